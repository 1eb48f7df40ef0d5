// Sessions: started at login, kept alive by refresh-token rotation, ended by logout, expiry or revocation.
// Rotation follows the OAuth 2.0 Security BCP: every refresh spends the presented token and hands out its
// successor; a spent token presented again is reuse, and revokes the whole session. Within a short window
// after a token was spent, a repeat (several tabs, a retry after a lost response) gets the session's current
// token instead: the very same one the first caller got, so the session keeps a single live refresh token.
// A token names its session and generation under an HMAC tag; the session row holds the live generation.
// See docs/decisions/0010-refresh-generations.md (and 0005 for tokens issued before it). A login, the end of a
// session and a detected reuse are recorded as security events in the transaction that makes the change; a
// refresh is not (the log would grow with every refresh).
import type { Static } from 'typebox'
import type { AuthStateCache, LoadAccessState } from '../access/auth-state.ts'
import type { TokenService, TokenSubject } from '../access/token.service.ts'
import type { Transact } from '../db/transact.ts'
import type { Client, EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId, storableAddress } from '../lib/ids.ts'
import {
  hashLegacyRefreshToken,
  isLegacyRefreshToken,
  nextLegacyRefreshToken,
  readRefreshToken,
  refreshTokenFor,
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
  | 'password_reset'
  | 'user_disabled'
  | 'refresh_token_reused'

/**
 * Counts a rotation of the session against its rate limit, throwing 429 past it; resolves with the function
 * that gives the count back.
 */
export type CountRotation = (sessionId: string) => Promise<() => Promise<void>>

export interface SessionService {
  /**
   * Starts a session for a user whose password (and second factor, per `amr`) was just checked, at the token
   * version that check saw, and records `login.succeeded`.
   */
  start(user: TokenSubject, client: ClientInfo, amr?: string[]): Promise<SessionGrant>
  /**
   * The user proved who they are again (`amr`) in a live session: its tokens carry the new `auth_time` from now
   * on. Returns an access token of the session that does; `session_not_found` when it has ended.
   */
  reauthenticate(
    user: TokenSubject,
    sessionId: string,
    amr: string[],
    context: EventContext,
  ): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }>
  /** `client`: who presented the token, recorded if it turns out to be a reuse. */
  refresh(refreshToken: string, countRotation: CountRotation, client: Client): Promise<SessionGrant>
  /** The session a refresh token belongs to, for logout by refresh token; undefined when unknown. */
  sessionOfToken(refreshToken: string): Promise<Session | undefined>
  list(userId: string): Promise<Session[]>
  /** Revokes one of the user's own sessions (`revoked_by_user`); 404 when it is not theirs or not active. */
  revoke(userId: string, sessionId: string, client: Client): Promise<void>
  /** Revokes every session of the user (`logout_all`): signing out everywhere. */
  revokeAll(userId: string, client: Client): Promise<void>
  /** Logs a session out if it is still active; nothing happens when it is not (logout is idempotent). */
  end(sessionId: string, client: Client): Promise<void>
  purge(): Promise<number>
}

/** What a session change and its events are written with, in one transaction. */
export type SessionStore = { sessions: SessionRepository; events: EventWriter }

const invalidRefreshToken = (detail = 'The refresh token is not valid') =>
  new AppError('invalid_refresh_token', detail)

// The largest generation a token can name (uint32): a session refreshed that often must sign in again.
const MAX_GENERATION = 0xffff_ffff

/** A presented refresh token, found: its session, and its generation or its legacy row. */
type Located =
  | { session: Session; generation: number }
  | { session: Session; legacy: { token: string; tokenHash: string; spentAt: number | null } }

export type SessionServiceDeps = {
  /** Reads, and the writes that record no event (a rotation). */
  sessions: SessionRepository
  /** Writes that record events, each with its events in one transaction. */
  transact: Transact<SessionStore>
  /** Reads a session's user as it is now (not from the cache): a refresh issues tokens from it. */
  loadAccessState: LoadAccessState
  tokens: TokenService
  authStates: AuthStateCache
  clock: Clock
  /** The key of refresh-token tags (a server secret; legacy successors were derived with it too). */
  rotationSecret: Buffer
  config: SessionConfig
}

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { sessions, transact, loadAccessState, tokens, authStates, clock, rotationSecret, config } = deps

  const isLive = (session: Session, now: number) =>
    session.revokedAt === null && session.expiresAt > now && session.lastUsedAt + config.idleTtlSeconds > now

  const grant = (user: TokenSubject, session: Session, refreshToken: string, now: number): SessionGrant => {
    const { token, expiresIn } = tokens.issueAccessToken(user, session.id, session.authentication)
    return {
      access_token: token,
      token_type: 'Bearer',
      expires_in: expiresIn,
      refresh_token: refreshToken,
      refresh_token_expires_in: Math.max(0, session.expiresAt - now),
    }
  }

  const revokedError = () => invalidRefreshToken('The session has been revoked. Sign in again.')

  /** The session a presented token belongs to, and where the token stands; undefined if unknown or forged. */
  const locate = async (token: string): Promise<Located | undefined> => {
    const claims = readRefreshToken(rotationSecret, token)
    if (claims) {
      const session = await sessions.findById(claims.sessionId)
      // A session still on a legacy token was never given a tagged one.
      if (!session || session.refreshGeneration === null) return undefined
      return { session, generation: claims.generation }
    }
    if (!isLegacyRefreshToken(token)) return undefined
    const tokenHash = hashLegacyRefreshToken(token)
    const found = await sessions.findLegacyToken(tokenHash)
    return found && { session: found.session, legacy: { token, tokenHash, spentAt: found.spentAt } }
  }

  const isLiveToken = (located: Located): boolean =>
    'legacy' in located
      ? located.legacy.spentAt === null && located.session.refreshGeneration === null
      : located.generation === located.session.refreshGeneration

  /** Spends the live token; the generation made live, or undefined when another request spent it first. */
  const spend = async (located: Located, now: number): Promise<number | undefined> => {
    const { session } = located
    if ('legacy' in located) {
      return (await sessions.convertLegacy(session.id, located.legacy.tokenHash, now)) ? 0 : undefined
    }
    return (await sessions.rotate(session.id, located.generation, now)) ? located.generation + 1 : undefined
  }

  /** Whether a legacy token is the one whose conversion made generation 0 live (spent at that moment). */
  const spentByConversion = (located: Extract<Located, { legacy: unknown }>, session: Session) =>
    located.legacy.spentAt !== null && located.legacy.spentAt === session.refreshedAt

  const reuse = async (session: Session, now: number, client: Client): Promise<never> => {
    await transact(async (store) => {
      // Recorded once: of several presentations of a spent token at once, one revokes the session.
      if (await store.sessions.revoke(session.id, 'refresh_token_reused', now)) {
        await store.events.record({
          type: 'session.reuse_detected',
          context: { actor: { kind: 'anonymous' }, ...client },
          userId: session.userId,
          sessionId: session.id,
        })
      }
    })
    authStates.forgetSession(session.id)
    throw new AppError(
      'refresh_token_reused',
      'This refresh token was already used; the session has been revoked. Sign in again.',
    )
  }

  /**
   * A spent token presented again: within the window after it was spent (which is [spent, spent + window),
   * so with a window of 0 every repeat is reuse), the session's live token; otherwise reuse, and the session
   * is revoked. Only the token spent last is answered so: an older one is reuse however recent.
   */
  const repeatOrReuse = async (
    located: Located,
    session: Session,
    now: number,
    client: Client,
  ): Promise<string> => {
    const inWindow = (spentAt: number | null) => spentAt !== null && now - spentAt < config.reuseWindowSeconds
    const live = session.refreshGeneration
    if (live !== null) {
      // The legacy token that the conversion spent stands where generation -1 would; any other legacy
      // token of the session was spent before it, and is reuse.
      const presented =
        'legacy' in located ? (spentByConversion(located, session) ? -1 : -2) : located.generation
      if (presented > live) throw invalidRefreshToken()
      if (presented === live - 1 && inWindow(session.refreshedAt)) {
        return refreshTokenFor(rotationSecret, { sessionId: session.id, generation: live })
      }
      return reuse(session, now, client)
    }
    // Still on legacy tokens: a token spent just before the upgrade, whose successor is the live one.
    if ('legacy' in located && inWindow(located.legacy.spentAt)) {
      const next = nextLegacyRefreshToken(rotationSecret, located.legacy.token)
      const successor = await sessions.findLegacyToken(hashLegacyRefreshToken(next))
      if (successor?.spentAt === null && successor.session.id === session.id) return next
    }
    return reuse(session, now, client)
  }

  /** Revokes a live session as its user asked, and records it; false when it had already ended. */
  const revokeAsAsked = async (
    sessionId: string,
    reason: Extract<RevocationReason, 'logout' | 'revoked_by_user'>,
    client: Client,
  ): Promise<boolean> => {
    const revoked = await transact(async (store) => {
      const done = await store.sessions.revoke(sessionId, reason, epochSeconds(clock))
      if (done) {
        await store.events.record({
          type: 'session.revoked',
          context: { actor: { kind: 'user', id: done.userId }, ...client },
          userId: done.userId,
          sessionId,
          detail: { reason },
        })
      }
      return done !== undefined
    })
    authStates.forgetSession(sessionId)
    return revoked
  }

  return {
    async start(user, client, amr = ['pwd']) {
      const now = epochSeconds(clock)
      const session = await transact(async (store) => {
        const created = await store.sessions.create({
          id: newId(),
          userId: user.id,
          createdAt: now,
          expiresAt: now + config.absoluteTtlSeconds,
          userAgent: client.userAgent?.slice(0, 512) ?? null,
          ip: storableAddress(client.ip),
          tokenVersion: user.tokenVersion,
          authentication: { amr, authTime: now },
        })
        if (created) {
          await store.events.record({
            type: 'login.succeeded',
            context: { actor: { kind: 'user', id: user.id }, ...client },
            userId: user.id,
            sessionId: created.id,
            detail: { amr },
          })
        }
        return created
      })
      // The password was changed, or the user disabled or deleted, while the password was being checked.
      if (!session) throw new AppError('invalid_credentials')
      return grant(
        user,
        session,
        refreshTokenFor(rotationSecret, { sessionId: session.id, generation: 0 }),
        now,
      )
    },

    async refresh(refreshToken, countRotation, client) {
      let located = await locate(refreshToken)
      if (!located) throw invalidRefreshToken()
      const { session } = located
      const now = epochSeconds(clock)
      if (session.revokedAt !== null) throw revokedError()
      if (!isLive(session, now)) throw new AppError('session_expired')
      // sessionRevoked: revoked, or the password changed since the session started.
      const state = await loadAccessState(session.id)
      if (!state || state.disabled || state.sessionRevoked) throw revokedError()
      const user = { id: state.userId, ...state }

      if (isLiveToken(located)) {
        // Only a fresh rotation counts against the session's limit: a spent token presented again must
        // always reach the reuse check, or a thief refreshing fast could keep the victim from revoking.
        if (!('legacy' in located) && located.generation >= MAX_GENERATION) {
          throw new AppError('session_expired', 'This session has been refreshed as often as it can be')
        }
        const giveBack = await countRotation(session.id)
        const generation = await spend(located, now)
        if (generation !== undefined) {
          return grant(
            user,
            session,
            refreshTokenFor(rotationSecret, { sessionId: session.id, generation }),
            now,
          )
        }
        // Another request spent it a moment ago (answer as a repeat, which is not a rotation of ours), or the
        // session ended meanwhile.
        await giveBack()
        // Read again, the token's state with its session's: the winner has changed both.
        const again = await locate(refreshToken)
        if (!again || !isLive(again.session, now)) throw revokedError()
        located = again
      }
      return grant(user, located.session, await repeatOrReuse(located, located.session, now, client), now)
    },

    async reauthenticate(user, sessionId, amr, context) {
      const authentication = { amr, authTime: epochSeconds(clock) }
      await transact(async (store) => {
        if (!(await store.sessions.reauthenticate(sessionId, authentication))) {
          throw new AppError('session_not_found')
        }
        await store.events.record({
          type: 'session.reauthenticated',
          context,
          userId: user.id,
          sessionId,
          detail: { amr },
        })
      })
      const { token, expiresIn } = tokens.issueAccessToken(user, sessionId, authentication)
      return { access_token: token, token_type: 'Bearer', expires_in: expiresIn }
    },

    async sessionOfToken(refreshToken) {
      return (await locate(refreshToken))?.session
    },

    async list(userId) {
      const now = epochSeconds(clock)
      return sessions.listActive(userId, now, now - config.idleTtlSeconds)
    },

    async revoke(userId, sessionId, client) {
      const session = await sessions.findById(sessionId)
      if (!session || session.userId !== userId || !isLive(session, epochSeconds(clock))) {
        throw new AppError('session_not_found')
      }
      await revokeAsAsked(sessionId, 'revoked_by_user', client)
    },

    async revokeAll(userId, client) {
      await transact(async (store) => {
        const revoked = await store.sessions.revokeAllForUser(userId, 'logout_all', epochSeconds(clock))
        await store.events.record({
          type: 'sessions.revoked_all',
          context: { actor: { kind: 'user', id: userId }, ...client },
          userId,
          detail: { sessionsRevoked: revoked },
        })
      })
      // One message for all of them (with Redis, one broadcast rather than one per session).
      authStates.forgetUser(userId)
    },

    async end(sessionId, client) {
      await revokeAsAsked(sessionId, 'logout', client)
    },

    async purge() {
      const now = epochSeconds(clock)
      return sessions.purge(now, now - config.idleTtlSeconds)
    },
  }
}
