// Account recovery without email (issue 14): a single-use reset token, issued by an admin, by the operator's
// CLI, or on the user's own request and then delivered through the app's channel (a signed webhook to
// PASSWORD_RESET_WEBHOOK_URL, from the durable outbox of issue 13). Setting a password with it obeys the rules
// of any new password, ends every session, and ends every earlier token. See decision 0014.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { AuthStateCache } from '../access/auth-state.ts'
import { usernameKey } from '../access/username.ts'
import type { RecoveryConfig } from '../config/load-config.ts'
import type { Transact } from '../db/transact.ts'
import type { Client, EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId, randomToken } from '../lib/ids.ts'
import type { SessionRepository } from '../sessions/session.repository.ts'
import type { User, UserRepository } from '../users/user.repository.ts'
import type { WebhookMessage } from '../webhooks/webhook-signature.ts'
import type { Lockout } from './lockout.ts'
import type { NewPasswordCheck } from './new-password.ts'
import type { PasswordHasher } from './password-hasher.ts'
import type { PasswordResetRepository } from './password-reset.repository.ts'

export type ResetLink = { token: string; url: string; expires_in: number }

/** Who asked for a token: an admin over the API, the operator's CLI, or the user (self-service). */
export type ResetVia = 'admin' | 'cli' | 'self_service'

export interface PasswordResetService {
  /** A new token for the user (any earlier one stops working), and its link. 404 user_not_found. */
  issue(userId: string, via: Exclude<ResetVia, 'self_service'>, context: EventContext): Promise<ResetLink>
  /**
   * The self-service request: for an existing, enabled user, a token whose link goes to the app through
   * PASSWORD_RESET_WEBHOOK_URL; for anyone else, nothing. Resolves alike either way.
   */
  request(username: string, client: Client): Promise<void>
  /** Sets the password with a token: 400 invalid_reset_token, or validation_failed for the password. */
  reset(token: string, newPassword: string, client: Client): Promise<void>
  /** Deletes the tokens that have expired; resolves to how many. */
  purge(): Promise<number>
}

/** Sends a reset link to the app's channel, in the transaction that issues its token (the outbox). */
export type SendResetLink = (message: WebhookMessage, expiresAt: number) => Promise<unknown>

/** What issuing or spending a token writes, with its events, in one transaction. */
export type ResetStore = {
  users: UserRepository
  sessions: SessionRepository
  events: EventWriter
  passwordResets: PasswordResetRepository
  sendResetLink: SendResetLink
}

export type PasswordResetServiceDeps = {
  users: UserRepository
  passwordResets: PasswordResetRepository
  transact: Transact<ResetStore>
  hasher: PasswordHasher
  newPasswords: NewPasswordCheck
  authStates: AuthStateCache
  /** A reset forgets the account's failed logins: their slowdown, and their count of this minute. */
  lockout: Pick<Lockout, 'state' | 'unlock'>
  forgetLoginLimit: (usernameKey: string) => Promise<void>
  clock: Clock
  config: RecoveryConfig
}

// A token is a 16-character selector and a 43-character verifier (256 bits), both base64url.
const SELECTOR_LENGTH = 16
const TOKEN = /^[A-Za-z0-9_-]{59}$/
const sha256 = (text: string) => createHash('sha256').update(text).digest()
// Compared against when no token has the selector, so that an unknown one costs what a wrong one does.
const NO_VERIFIER = sha256(randomToken(32))

const invalidToken = () => new AppError('invalid_reset_token')

/** A self-service link is sent again (a new token, ending the last) only this long after the last one. */
export const RESEND_AFTER_SECONDS = 300

export function createPasswordResetService(deps: PasswordResetServiceDeps): PasswordResetService {
  const { users, passwordResets, transact, hasher, newPasswords, authStates, lockout, clock, config } = deps
  const { forgetLoginLimit } = deps

  /**
   * Writes a new token for the user in `store`, and records that it was issued. The caller has taken the
   * user's token lock (`lockTokenOf`) in that transaction.
   */
  async function issueIn(store: ResetStore, user: User, via: ResetVia, context: EventContext) {
    const selector = randomToken(12)
    const verifier = randomToken(32)
    const now = epochSeconds(clock)
    const expiresAt = now + config.resetTtlSeconds
    await store.passwordResets.replace({
      userId: user.id,
      selector,
      verifierHash: sha256(verifier).toString('hex'),
      tokenVersion: user.tokenVersion,
      issuedVia: via,
      createdAt: now,
      expiresAt,
    })
    await store.events.record({
      type: 'password.reset_link_issued',
      context,
      userId: user.id,
      detail: { via, expiresIn: config.resetTtlSeconds },
    })
    const token = `${selector}${verifier}`
    // In the fragment: browsers send it to no server, and in no Referer.
    const link: ResetLink = {
      token,
      url: `${config.resetPageUrl}#token=${token}`,
      expires_in: config.resetTtlSeconds,
    }
    return { link, expiresAt }
  }

  /** The token's row, if the token is one that may still be used; undefined for anything else. */
  async function usable(token: string) {
    if (!TOKEN.test(token)) return undefined
    const found = await passwordResets.findBySelector(token.slice(0, SELECTOR_LENGTH))
    const given = sha256(token.slice(SELECTOR_LENGTH))
    const stored = found ? Buffer.from(found.verifierHash, 'hex') : NO_VERIFIER
    const matches = stored.length === given.length && timingSafeEqual(stored, given)
    if (!found || !matches || found.expiresAt <= epochSeconds(clock)) return undefined
    const user = await users.findById(found.userId)
    // A password changed since the token was issued (which bumps the token version) ends it.
    if (!user || user.tokenVersion !== found.tokenVersion) return undefined
    return { reset: found, user }
  }

  return {
    async issue(userId, via, context) {
      const user = await users.findById(userId)
      if (!user) throw new AppError('user_not_found')
      const issued = await transact(async (store) => {
        await store.passwordResets.lockTokenOf(user.id)
        return issueIn(store, user, via, context)
      })
      return issued.link
    },

    async request(username, client) {
      const user = await users.findByUsernameKey(usernameKey(username))
      if (!user || user.disabled) return
      const context: EventContext = { actor: { kind: 'anonymous' }, ...client }
      await transact(async (store) => {
        // Decided under the lock, so that parallel requests (or an admin issuing a link meanwhile) are not all
        // let through by one look at the table (three links were sent to one user by a race, on PostgreSQL).
        await store.passwordResets.lockTokenOf(user.id)
        const live = await store.passwordResets.findForUser(user.id)
        const now = epochSeconds(clock)
        if (live && live.expiresAt > now && live.tokenVersion === user.tokenVersion) {
          // A link an admin or the operator handed over stays usable until it expires, and one sent moments
          // ago is not sent again: anyone may ask for anyone, and must neither end the link the user holds nor
          // flood them with new ones.
          if (live.issuedVia !== 'self_service' || now - live.createdAt < RESEND_AFTER_SECONDS) return
        }
        const { link, expiresAt } = await issueIn(store, user, 'self_service', context)
        const message: WebhookMessage = {
          id: newId(),
          type: 'password.reset_requested',
          timestamp: epochSeconds(clock),
          data: { username: user.username, userId: user.id, url: link.url, expires_in: link.expires_in },
        }
        await store.sendResetLink(message, expiresAt)
      })
    },

    async reset(token, newPassword, client) {
      const found = await usable(token)
      if (!found) throw invalidToken()
      const { reset, user } = found
      await newPasswords.check(newPassword, user.username, '/body/newPassword')
      const passwordHash = await hasher.hash(newPassword)
      await transact(async (store) => {
        // Spent here, in the transaction of the change: of two requests with one token, one sets the password.
        if (!(await store.passwordResets.spend(reset.selector))) throw invalidToken()
        const now = epochSeconds(clock)
        // Only if the password has not changed since the token was issued (also while this one was hashed).
        const changed = await store.users.changePassword(user.id, passwordHash, now, reset.tokenVersion)
        if (!changed) throw invalidToken()
        const sessionsRevoked = await store.sessions.revokeAllForUser(user.id, 'password_reset', now)
        await store.events.record({
          type: 'password.reset',
          context: { actor: { kind: 'anonymous' }, ...client },
          userId: user.id,
          detail: { sessionsRevoked },
        })
      })
      authStates.forgetUser(user.id)
      // Whoever set it proved they hold the account's channel: the slowdown others caused must not refuse the
      // new password on a device without a device token (found by an outside attack).
      const account = usernameKey(user.username)
      if ((await lockout.state(account)).length > 0) {
        await lockout.unlock(user, { actor: { kind: 'anonymous' }, ...client })
      }
      await forgetLoginLimit(account)
    },

    purge: () => passwordResets.purgeExpired(epochSeconds(clock)),
  }
}
