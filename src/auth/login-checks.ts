// What every check of a user's secrets shares (the login, its second step, a password change, a reauthentication):
// whom a password check counts against in the hash queue, how a failed check is recorded and counted in the
// account's slowdown (lockout.ts), and the answer to a count that is slowed down.
import { sessionDevice } from '../access/session-device.ts'
import { usernameKey } from '../access/username.ts'
import type { Client, EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import type { LOGIN_FAILURE_REASONS } from '../events/event-types.ts'
import { AppError, type FieldError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { addressKey } from '../rate-limits/rate-limiter.ts'
import type { User, UserRepository } from '../users/user.repository.ts'
import type { Lockout } from './lockout.ts'
import { OTHERS } from './login-throttle.repository.ts'
import type { HashRequester } from './password-hasher.ts'

/** Throttled logins remembered at most, per process, to record each once per window. */
const MAX_THROTTLE_KEYS = 10_000

/** Whom a password check counts against in the hash queue (password-hasher.ts). */
export const requester = (username: string, ip: string | undefined, device = OTHERS): HashRequester => ({
  // A device token's holder has a share of its own, and the queue's priority lane: others' checks of the
  // account, or a flood of everyone's, cannot keep it out.
  account: device === OTHERS ? usernameKey(username) : `${usernameKey(username)} ${device}`,
  address: ip === undefined ? undefined : addressKey(ip),
  priority: device !== OTHERS,
})

export const invalid = (errors: FieldError[]) =>
  new AppError('validation_failed', 'One or more fields are not valid; see errors.', { errors })

export type FailureReason = (typeof LOGIN_FAILURE_REASONS)[number]

export interface LoginChecks {
  /** A refused login, recorded about the account when one has that name, else about a hash of the name. */
  recordFailedLogin(
    username: string,
    user: User | undefined,
    reason: FailureReason,
    client: Client,
  ): Promise<void>
  /** A failed check (a wrong password or code), counted in the slowdown of the account's `device` count. */
  countFailure(
    account: string,
    device: string,
    user: { id: string } | undefined,
    client: Client,
  ): Promise<void>
  /**
   * A throttled login (`rate_limited`), recorded at most once per account and once per address per window:
   * `user` when the caller has it, else looked up by the name.
   */
  recordThrottled(username: string, client: Client, user?: User): Promise<void>
  /** The answer to a login refused unchecked because its count is slowed down: `refusal` for OTHERS. */
  slowedDown(refusedUntil: number, device: string, refusal: () => AppError): AppError
  /**
   * Runs a check of a signed-in user's secrets (their password, a code) under the slowdown of the session's own
   * count: each failure the check counts slows that session down, as failed logins slow a device down, so that
   * a stolen access token gives no more guesses than the login form; the owner's other sessions and devices are
   * never slowed by it. A slowed-down session is refused before anything is checked (`429
   * login_slowed_down`: it is signed in), so the answer tells nothing of the secrets either.
   */
  underSessionCount<T>(
    user: { id: string; username: string },
    sessionId: string,
    check: (countFailure: () => Promise<void>) => Promise<T>,
    context: EventContext,
  ): Promise<T>
}

export type LoginChecksDeps = {
  /** Events that record no change (a refused login), each in a transaction of its own. */
  events: EventWriter
  users: Pick<UserRepository, 'findByUsernameKey'>
  lockout: Lockout
  clock: Clock
  /** The stand-in recorded for a login name no account has (events/event-recorder.ts, createNameHasher). */
  hashAttemptedName: (usernameKey: string) => string
  /** RATE_LIMIT_WINDOW_SECONDS: a throttled login is recorded once per account and address in this time. */
  throttleWindowSeconds: number
}

export function createLoginChecks(deps: LoginChecksDeps): LoginChecks {
  const { events, users, lockout, clock, hashAttemptedName } = deps

  /** `429 login_slowed_down`, and how long: for a device token's holder, or a session, who may know why. */
  const waitUntil = (refusedUntil: number) => {
    const wait = Math.max(1, refusedUntil - epochSeconds(clock))
    return new AppError('login_slowed_down', undefined, { headers: { 'retry-after': String(wait) } })
  }

  // Keys (an account, an address) whose throttled login was recorded, and until when (epoch ms).
  const throttled = new Map<string, number>()
  /** Whether none of the keys was recorded in the window; if so, they are from now. */
  const firstThrottle = (keys: string[]): boolean => {
    const now = clock.now()
    if (keys.some((key) => (throttled.get(key) ?? 0) > now)) return false
    for (const key of keys) {
      throttled.delete(key)
      if (throttled.size >= MAX_THROTTLE_KEYS) {
        const oldest = throttled.keys().next().value
        if (oldest !== undefined) throttled.delete(oldest)
      }
      throttled.set(key, now + deps.throttleWindowSeconds * 1000)
    }
    return true
  }

  const checks: LoginChecks = {
    async recordFailedLogin(username, user, reason, client) {
      await events.record({
        type: 'login.failed',
        context: { actor: { kind: 'anonymous' }, ...client },
        userId: user?.id ?? null,
        detail: user ? { reason } : { reason, usernameHash: hashAttemptedName(usernameKey(username)) },
      })
    },

    async countFailure(account, device, user, client) {
      const { failures, started } = await lockout.recordFailure(account, device)
      if (user && started !== undefined) {
        await events.record({
          type: 'login.locked',
          context: { actor: { kind: 'anonymous' }, ...client },
          userId: user.id,
          detail: { device: device === OTHERS ? 'others' : 'own', failures, seconds: started },
        })
      }
    },

    async recordThrottled(username, client, user) {
      const account = usernameKey(username)
      const keys = [`account:${account}`, ...(client.ip ? [`address:${addressKey(client.ip)}`] : [])]
      if (!firstThrottle(keys)) return
      const subject = user ?? (await users.findByUsernameKey(account))
      await checks.recordFailedLogin(username, subject, 'rate_limited', client)
    },

    slowedDown: (refusedUntil, device, refusal) => (device === OTHERS ? refusal() : waitUntil(refusedUntil)),

    async underSessionCount(user, sessionId, check, context) {
      const account = usernameKey(user.username)
      const device = sessionDevice(sessionId)
      const entry = await lockout.enter(account, device)
      try {
        if (entry.refusedUntil > 0) throw waitUntil(entry.refusedUntil)
        const result = await check(() => checks.countFailure(account, device, user, context))
        await lockout.recordSuccess(account, device)
        return result
      } finally {
        entry.leave()
      }
    },
  }
  return checks
}
