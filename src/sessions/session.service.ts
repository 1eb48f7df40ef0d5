// Sessions: started at login, kept alive by refresh-token rotation, ended by logout, expiry or revocation.
// Rotation follows the OAuth 2.0 Security BCP: every refresh spends the presented token and hands out its
// successor; a spent token presented again is reuse, and revokes the whole session. Within a short window
// after a token was spent, a repeat (several tabs, a retry after a lost response) gets the session's current
// token instead: the very same one the first caller got, so the session keeps a single live refresh token.
// See docs/decisions/0005-refresh-token-rotation.md.
import { isIP } from 'node:net'
import type { Static } from 'typebox'
import type { AuthStateCache, LoadAccessState } from '../access/auth-state.ts'
import type { TokenService, TokenSubject } from '../access/token.service.ts'
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId } from '../lib/ids.ts'
import {
  hashRefreshToken,
  isWellFormedRefreshToken,
  newRefreshToken,
  nextRefreshToken,
} from './refresh-token.ts'
import type { Session, SessionRepository } from './session.repository.ts'
import type { SessionGrant as SessionGrantSchema } from './sessions.schemas.ts'

export type SessionConfig = { absoluteTtlSeconds: number; idleTtlSeconds: number; reuseWindowSeconds: number }

export type ClientInfo = { userAgent: string | undefined; ip: string | undefined }

export type SessionGrant = Static<typeof SessionGrantSchema> & { refresh_token: string }

export type RevocationReason =
  | 'logout'
  | 'logout_all'
  | 'revoked_by_user'
  | 'password_changed'
  | 'user_disabled'
  | 'refresh_token_reused'

/** Counts a rotation of the session against its rate limit; throws 429 past it. */
export type CountRotation = (sessionId: string) => Promise<void>

export interface SessionService {
  /** Starts a session for a user whose password was just checked, at the token version that check saw. */
  start(user: TokenSubject, client: ClientInfo): Promise<SessionGrant>
  refresh(refreshToken: string, countRotation: CountRotation): Promise<SessionGrant>
  /** The session a refresh token belongs to, for logout by refresh token; undefined when unknown. */
  sessionOfToken(refreshToken: string): Promise<Session | undefined>
  list(userId: string): Promise<Session[]>
  /** Revokes one of the user's own sessions; 404 when it is not theirs or not active. */
  revoke(userId: string, sessionId: string, reason: RevocationReason): Promise<void>
  revokeAll(userId: string, reason: RevocationReason): Promise<void>
  /** Ends a session if it is still active; nothing happens when it is not (logout is idempotent). */
  end(sessionId: string, reason: RevocationReason): Promise<void>
  purge(): Promise<number>
}

// How many rotations a repeat may follow to the live token; each must have happened within the window.
const MAX_REPEAT_HOPS = 5

const invalidRefreshToken = (detail = 'The refresh token is not valid') =>
  new AppError('invalid_refresh_token', detail)

export type SessionServiceDeps = {
  sessions: SessionRepository
  /** Reads a session's user as it is now (not from the cache): a refresh issues tokens from it. */
  loadAccessState: LoadAccessState
  tokens: TokenService
  authStates: AuthStateCache
  clock: Clock
  /** The key that derives each rotated token from its predecessor (a server secret). */
  rotationSecret: Buffer
  config: SessionConfig
}

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { sessions, loadAccessState, tokens, authStates, clock, rotationSecret, config } = deps

  const isLive = (session: Session, now: number) =>
    session.revokedAt === null && session.expiresAt > now && session.lastUsedAt + config.idleTtlSeconds > now

  const grant = (user: TokenSubject, session: Session, refreshToken: string, now: number): SessionGrant => {
    const { token, expiresIn } = tokens.issueAccessToken(user, session.id)
    return {
      access_token: token,
      token_type: 'Bearer',
      expires_in: expiresIn,
      refresh_token: refreshToken,
      refresh_token_expires_in: Math.max(0, session.expiresAt - now),
    }
  }

  const revokeSession = async (session: Session, reason: RevocationReason, now: number) => {
    await sessions.revoke(session.id, reason, now)
    authStates.forgetSession(session.id)
  }

  /** The live token a repeat of `token` should get, or reuse: then the session is revoked. */
  const followRepeat = async (token: string, session: Session, now: number): Promise<string> => {
    let current = token
    for (let hop = 0; hop <= MAX_REPEAT_HOPS; hop++) {
      const state = await sessions.findTokenState(hashRefreshToken(current))
      if (!state || state.sessionId !== session.id) break
      if (state.spentAt === null) return current
      // The window is [spent, spent + window): with a window of 0, every repeat is reuse.
      if (now - state.spentAt >= config.reuseWindowSeconds) {
        await revokeSession(session, 'refresh_token_reused', now)
        throw new AppError(
          'refresh_token_reused',
          'This refresh token was already used; the session has been revoked. Sign in again.',
        )
      }
      current = nextRefreshToken(rotationSecret, current)
    }
    throw invalidRefreshToken()
  }

  return {
    async start(user, client) {
      const now = epochSeconds(clock)
      const refreshToken = newRefreshToken()
      const session = await sessions.create(
        {
          id: newId(),
          userId: user.id,
          createdAt: now,
          expiresAt: now + config.absoluteTtlSeconds,
          userAgent: client.userAgent?.slice(0, 512) ?? null,
          ip: client.ip && isIP(client.ip) ? client.ip : null,
          tokenVersion: user.tokenVersion,
        },
        hashRefreshToken(refreshToken),
      )
      // The password was changed, or the user disabled or deleted, while the password was being checked.
      if (!session) throw new AppError('invalid_credentials')
      return grant(user, session, refreshToken, now)
    },

    async refresh(refreshToken, countRotation) {
      if (!isWellFormedRefreshToken(refreshToken)) throw invalidRefreshToken()
      const tokenHash = hashRefreshToken(refreshToken)
      const found = await sessions.findByToken(tokenHash)
      if (!found) throw invalidRefreshToken()
      const { session } = found
      const now = epochSeconds(clock)
      if (session.revokedAt !== null)
        throw invalidRefreshToken('The session has been revoked. Sign in again.')
      if (!isLive(session, now)) throw new AppError('session_expired')
      // sessionRevoked: revoked, or the password changed since the session started.
      const state = await loadAccessState(session.id)
      if (!state || state.disabled || state.sessionRevoked) {
        throw invalidRefreshToken('The session has been revoked. Sign in again.')
      }
      const user = { id: state.userId, ...state }

      if (found.spentAt === null) {
        // Only a fresh rotation counts against the session's limit: a spent token presented again must
        // always reach the reuse check, or a thief refreshing fast could keep the victim from revoking.
        await countRotation(session.id)
        const next = nextRefreshToken(rotationSecret, refreshToken)
        if (await sessions.rotate(session.id, tokenHash, hashRefreshToken(next), now)) {
          return grant(user, session, next, now)
        }
        // Another request spent it a moment ago (answer as a repeat), or the session ended meanwhile.
        const current = await sessions.findById(session.id)
        if (!current || !isLive(current, now)) {
          throw invalidRefreshToken('The session has been revoked. Sign in again.')
        }
      }
      return grant(user, session, await followRepeat(refreshToken, session, now), now)
    },

    async sessionOfToken(refreshToken) {
      if (!isWellFormedRefreshToken(refreshToken)) return undefined
      return (await sessions.findByToken(hashRefreshToken(refreshToken)))?.session
    },

    async list(userId) {
      const now = epochSeconds(clock)
      return sessions.listActive(userId, now, now - config.idleTtlSeconds)
    },

    async revoke(userId, sessionId, reason) {
      const session = await sessions.findById(sessionId)
      const now = epochSeconds(clock)
      if (!session || session.userId !== userId || !isLive(session, now)) {
        throw new AppError('session_not_found')
      }
      await revokeSession(session, reason, now)
    },

    async revokeAll(userId, reason) {
      await sessions.revokeAllForUser(userId, reason, epochSeconds(clock))
      // One message for all of them (with Redis, one broadcast rather than one per session).
      authStates.forgetUser(userId)
    },

    async end(sessionId, reason) {
      await sessions.revoke(sessionId, reason, epochSeconds(clock))
      authStates.forgetSession(sessionId)
    },

    async purge() {
      const now = epochSeconds(clock)
      return sessions.purge(now, now - config.idleTtlSeconds)
    },
  }
}
