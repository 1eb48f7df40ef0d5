// Registration, login and password change: the seed's login flow, with argon2id, constant-ish timing for
// unknown users, transparent upgrade of old hashes, and token revocation on password change. A new username
// or password must also pass the rules of issue 11 (access/username.ts, new-password.ts). Each outcome is a
// security event (issue 13): an account created, a login that succeeded or failed (and why), a password changed,
// recorded in the transaction of the change when there is one. Failed logins slow an account down, except for
// the devices that hold its device token (lockout.ts, issue 14). For a user with a second factor (issue 15) the
// right password opens a challenge instead of a session, which a code completes (second-factor-login.ts).
import type { AuthStateCache } from '../access/auth-state.ts'
import { lookalikeKey, normalizeUsername, type UsernamePolicy, usernameKey } from '../access/username.ts'
import { isUniqueViolation } from '../db/database-errors.ts'
import type { Transact } from '../db/transact.ts'
import type { Client, EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId, randomToken } from '../lib/ids.ts'
import { addressKey } from '../rate-limits/rate-limiter.ts'
import type { SessionRepository } from '../sessions/session.repository.ts'
import type { ClientInfo, SessionGrant, SessionService } from '../sessions/session.service.ts'
import type { User, UserRepository } from '../users/user.repository.ts'
import type { DeviceToken, DeviceTokens } from './device-tokens.ts'
import type { Lockout } from './lockout.ts'
import { createLoginChecks, invalid, requester } from './login-checks.ts'
import { OTHERS } from './login-throttle.repository.ts'
import type { MfaService } from './mfa.service.ts'
import type { NewPasswordCheck } from './new-password.ts'
import type { PasswordHasher } from './password-hasher.ts'
import { createSecondFactorFlows, type SecondFactorFlows } from './second-factor-login.ts'

export type Registration = { username: string; password: string; firstName: string; lastName: string }

/** A login's answer: a session, or (for a user with a second factor) the challenge its code completes. */
export type LoginOutcome =
  | { grant: SessionGrant & { mfa_enrollment_required?: true }; device: DeviceToken }
  | { challenge: { mfa_token: string; expires_in: number } }

export interface AuthService extends SecondFactorFlows {
  /**
   * `context`: who registers, and from where (its address, when it came over HTTP, also counts the hash
   * against that address). `allowReservedUsername`: for the operator's CLI, which may create the names
   * RESERVED_USERNAMES keeps from the public.
   */
  register(
    input: Registration,
    options: { context: EventContext; roles?: string[]; allowReservedUsername?: boolean },
  ): Promise<User>
  /**
   * Verifies the password and starts a session; a refusal is recorded with its reason. `deviceToken`: the one
   * an earlier login of this account handed the client, if it holds one; the grant comes with a device token
   * (the same device's, renewed, or a new one).
   */
  login(username: string, password: string, client: ClientInfo, deviceToken?: string): Promise<LoginOutcome>
  /** The device id a device token proves for this username, if it does. */
  deviceOf(username: string, deviceToken: unknown): string | undefined
  /**
   * Every session of the user ends: the new password must be used to sign in again. `user.username` is the
   * stored one, which the new password may not contain.
   */
  changePassword(
    user: { id: string; username: string; sessionId: string },
    passwordChange: { currentPassword: string; newPassword: string },
    context: EventContext,
  ): Promise<void>
  /**
   * Records a login answered 429 (`login.failed`, `rate_limited`), at most once per account and once per
   * address per rate-limit window: the refusals of a flood must stay cheap.
   */
  recordThrottledLogin(username: string, client: Client): Promise<void>
}

/** What a credential change and its events are written with, in one transaction. */
export type AuthStore = { users: UserRepository; sessions: SessionRepository; events: EventWriter }

export type AuthServiceDeps = {
  /** Reads, and the writes that record no event (a rehash). */
  users: UserRepository
  /** Writes that record events, each with its events in one transaction. */
  transact: Transact<AuthStore>
  /** Events that record no change (a refused login), each in a transaction of its own. */
  events: EventWriter
  hasher: PasswordHasher
  newPasswords: NewPasswordCheck
  mfa: MfaService
  /** MFA_REQUIRED_ROLES: a user holding one of them and no factor is told to enrol at login. */
  mfaRequiredRoles: readonly string[]
  lockout: Lockout
  deviceTokens: DeviceTokens
  sessions: SessionService
  authStates: AuthStateCache
  clock: Clock
  /** Usernames only the CLI may register (RESERVED_USERNAMES), compared by usernameKey. */
  reservedUsernames: readonly string[]
  /** What a new username must be (USERNAME_PATTERN, USERNAME_MAX_LENGTH). */
  usernames: UsernamePolicy
  /** The stand-in recorded for a login name no account has (events/event-recorder.ts, createNameHasher). */
  hashAttemptedName: (usernameKey: string) => string
  /** RATE_LIMIT_WINDOW_SECONDS: a throttled login is recorded once per account and address in this time. */
  throttleWindowSeconds: number
}

export function createAuthService(deps: AuthServiceDeps): AuthService {
  const { users, transact, events, hasher, sessions, authStates, clock } = deps
  const { newPasswords, lockout, deviceTokens, mfa } = deps
  const mfaRequiredRoles = new Set(deps.mfaRequiredRoles)
  const reserved = new Set(deps.reservedUsernames.map(lookalikeKey))
  // Verifying against this when the user does not exist makes "no such user" cost the same as "wrong
  // password", so response times do not reveal which usernames exist.
  // Made at once, while the hash queue is empty, and made again if that failed: a refusal remembered here
  // would answer every unknown username 429 from then on, which tells them apart from known ones.
  let dummyHash: Promise<string> | undefined
  const getDummyHash = () => {
    dummyHash ??= hasher.hash(randomToken(32)).catch((error: unknown) => {
      dummyHash = undefined
      throw error
    })
    return dummyHash
  }
  getDummyHash().catch(() => {})

  const checks = createLoginChecks(deps)
  const { recordFailedLogin, countFailure, slowedDown } = checks

  return {
    ...createSecondFactorFlows({ users, hasher, mfa, lockout, deviceTokens, sessions, checks }),

    async register(input, options) {
      const username = normalizeUsername(input.username)
      const usernameIssue =
        deps.usernames.problem(username) ??
        (!options.allowReservedUsername && reserved.has(lookalikeKey(username)) ? 'is reserved' : undefined)
      // Checked (breaches included) whether or not the name is taken, which is known only at the insert: a
      // check that ran only for free names would tell taken ones by time.
      const passwordIssue = await newPasswords.problem(input.password, username)
      if (usernameIssue || passwordIssue) {
        throw invalid([
          ...(usernameIssue ? [{ field: '/body/username', message: usernameIssue }] : []),
          ...(passwordIssue ? [{ field: '/body/password', message: passwordIssue }] : []),
        ])
      }
      // The account does not exist yet: counted against the address only, so that registering a taken name
      // cannot take the share of that name's owner.
      const { context } = options
      const address = context.ip ? addressKey(context.ip) : undefined
      const passwordHash = await hasher.hash(input.password, { address })
      const now = epochSeconds(clock)
      try {
        return await transact(async (store) => {
          const user = await store.users.insert({
            id: newId(),
            username,
            usernameKey: usernameKey(username),
            firstName: input.firstName,
            lastName: input.lastName,
            passwordHash,
            roles: options.roles ?? ['user'],
            createdAt: now,
            updatedAt: now,
          })
          await store.events.record({
            type: 'user.registered',
            context,
            userId: user.id,
            detail: { username: user.username, roles: user.roles },
          })
          return user
        })
      } catch (error) {
        if (isUniqueViolation(error))
          throw new AppError('username_taken', `The username "${username}" is taken`)
        throw error
      }
    },

    async login(username, password, client, deviceToken) {
      const account = usernameKey(username)
      const verified = deviceTokens.verify(account, deviceToken)
      const device = verified?.device ?? OTHERS
      const [entry, found] = await Promise.all([
        lockout.enter(account, device),
        users.findCredentials(account),
      ])
      try {
        const by = requester(username, client.ip, device)
        // Checked even when the answer is already known (an unknown name, a slowed-down account), so that the
        // time taken does not tell those apart from a wrong password.
        const matches = await hasher.verify(found?.passwordHash ?? (await getDummyHash()), password, by)
        if (entry.refusedUntil > 0) {
          // Not counted: a refusal unchecked is no guess. Without a device token, the answer is a wrong
          // password's, whatever the password: slowing down must not tell that the account exists, nor that
          // the password was right. A device token proves an earlier login: its holder may know why, and how long.
          await recordFailedLogin(username, found?.user, 'slowed_down', client)
          throw slowedDown(entry.refusedUntil, device, () => new AppError('invalid_credentials'))
        }
        const refusal = !found
          ? 'unknown_user'
          : !matches
            ? 'wrong_password'
            : found.user.disabled
              ? 'disabled'
              : undefined
        // (!found is said again for TypeScript: refusal is then 'unknown_user'.)
        if (!found || refusal !== undefined) {
          await recordFailedLogin(username, found?.user, refusal ?? 'unknown_user', client)
          await countFailure(account, device, found?.user, client)
          throw new AppError('invalid_credentials')
        }
        const { user, passwordHash } = found
        if (hasher.needsRehash(passwordHash)) {
          await users.setPasswordHash(user.id, await hasher.hash(password, by), epochSeconds(clock))
        }
        if (await mfa.isEnabled(user.id)) {
          // Half a login: the device's failures are forgotten only once the code is right too.
          await events.record({
            type: 'login.mfa_required',
            context: { actor: { kind: 'anonymous' }, ...client },
            userId: user.id,
          })
          // At the second step, only a device that completed one before counts apart (device-tokens.ts).
          return { challenge: await mfa.issueChallenge(user, verified?.secondFactor ? device : OTHERS) }
        }
        await lockout.recordSuccess(account, device)
        const grant = await sessions.start(user, client)
        const enrol = user.roles.some((role) => mfaRequiredRoles.has(role))
        return {
          grant: enrol ? { ...grant, mfa_enrollment_required: true } : grant,
          device: deviceTokens.issue(account, device === OTHERS ? undefined : device),
        }
      } finally {
        // After the failure is counted: the next check of this count sees it.
        entry.leave()
      }
    },

    deviceOf: (username, deviceToken) => deviceTokens.verify(usernameKey(username), deviceToken)?.device,

    async changePassword(user, { currentPassword, newPassword }, context) {
      // Before the current password is checked: a refusal here costs no hash, and says nothing about it.
      await newPasswords.check(newPassword, user.username, '/body/newPassword')
      const by = requester(user.username, context.ip ?? undefined)
      const currentHash = await users.findPasswordHash(user.id)
      if (currentHash === undefined) throw new AppError('user_not_found')
      await checks.underSessionCount(
        user,
        user.sessionId,
        async (countFailure) => {
          if (!(await hasher.verify(currentHash, currentPassword, by))) {
            await countFailure()
            throw new AppError('invalid_current_password')
          }
        },
        context,
      )
      const newHash = await hasher.hash(newPassword, by)
      await transact(async (store) => {
        const now = epochSeconds(clock)
        if (!(await store.users.changePassword(user.id, newHash, now))) throw new AppError('user_not_found')
        const sessionsRevoked = await store.sessions.revokeAllForUser(user.id, 'password_changed', now)
        await store.events.record({
          type: 'password.changed',
          context,
          userId: user.id,
          detail: { sessionsRevoked },
        })
      })
      // One message for all of the user's sessions (with Redis, one broadcast).
      authStates.forgetUser(user.id)
    },

    recordThrottledLogin: (username, client) => checks.recordThrottled(username, client),
  }
}
