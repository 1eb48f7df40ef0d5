// Registration, login and password change: the seed's login flow, with argon2id, constant-ish timing for
// unknown users, transparent upgrade of old hashes, and token revocation on password change. A new username
// or password must also pass the rules of issue 11 (access/username.ts, new-password.ts). Each outcome is a
// security event (issue 13): an account created, a login that succeeded or failed (and why), a password changed,
// recorded in the transaction of the change when there is one. Failed logins slow an account down, except for
// the devices that hold its device token (lockout.ts, issue 14). For a user with a second factor (issue 15) the
// right password opens a challenge instead of a session, which a code completes; a wrong code counts like a
// wrong password in the slowdown, and apart from passwords in the rate limits.
import type { AuthStateCache } from '../access/auth-state.ts'
import { sessionDevice } from '../access/session-device.ts'
import { lookalikeKey, normalizeUsername, usernameKey, usernameProblem } from '../access/username.ts'
import { isUniqueViolation } from '../db/database-errors.ts'
import type { Transact } from '../db/transact.ts'
import type { Client, EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import type { LOGIN_FAILURE_REASONS } from '../events/event-types.ts'
import { AppError, type FieldError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId, randomToken } from '../lib/ids.ts'
import { addressKey } from '../rate-limits/rate-limiter.ts'
import type { SessionRepository } from '../sessions/session.repository.ts'
import type { ClientInfo, SessionGrant, SessionService } from '../sessions/session.service.ts'
import type { User, UserRepository } from '../users/user.repository.ts'
import type { DeviceToken, DeviceTokens } from './device-tokens.ts'
import type { Lockout } from './lockout.ts'
import { OTHERS } from './login-throttle.repository.ts'
import type { CountCodeCheck, FactorProof, MfaService } from './mfa.service.ts'
import type { NewPasswordCheck } from './new-password.ts'
import type { HashRequester, PasswordHasher } from './password-hasher.ts'

export type Registration = { username: string; password: string; firstName: string; lastName: string }

/** A login's answer: a session, or (for a user with a second factor) the challenge its code completes. */
export type LoginOutcome =
  | { grant: SessionGrant & { mfa_enrollment_required?: true }; device: DeviceToken }
  | { challenge: { mfa_token: string; expires_in: number } }

/** The signed-in user, proving who they are again: their password, and their second factor if they have one. */
export type Reauthentication = { password: string } & FactorProof

export interface AuthService {
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
  /**
   * The second step of a login: the challenge's token and a code (or recovery code) of the user's factor. A
   * wrong code and a token that is wrong, used or expired are answered alike (`invalid_mfa_code`).
   */
  completeLogin(
    mfaToken: string,
    proof: FactorProof,
    client: ClientInfo,
    count: CountCodeCheck,
  ): Promise<{ grant: SessionGrant; device: DeviceToken }>
  /**
   * A fresh access token of the session, with a new `auth_time`, for the user's password (and code, if they
   * have a factor): what a step-up challenge asks for.
   */
  reauthenticate(
    auth: { userId: string; sessionId: string },
    proof: Reauthentication,
    context: EventContext,
    count: CountCodeCheck,
  ): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }>
  /** Removes the user's own second factor, for their password and a code or recovery code. */
  removeOwnFactor(
    auth: { userId: string; sessionId: string },
    proof: Reauthentication,
    context: EventContext,
    count: CountCodeCheck,
  ): Promise<void>
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
  /** The stand-in recorded for a login name no account has (events/event-recorder.ts, createNameHasher). */
  hashAttemptedName: (usernameKey: string) => string
  /** RATE_LIMIT_WINDOW_SECONDS: a throttled login is recorded once per account and address in this time. */
  throttleWindowSeconds: number
}

/** Throttled logins remembered at most, per process, to record each once per window. */
const MAX_THROTTLE_KEYS = 10_000

/** Whom a password check counts against in the hash queue (password-hasher.ts). */
const requester = (username: string, ip: string | undefined, device = OTHERS): HashRequester => ({
  // A device token's holder has a share of its own, and the queue's priority lane: others' checks of the
  // account, or a flood of everyone's, cannot keep it out.
  account: device === OTHERS ? usernameKey(username) : `${usernameKey(username)} ${device}`,
  address: ip === undefined ? undefined : addressKey(ip),
  priority: device !== OTHERS,
})

const invalid = (errors: FieldError[]) =>
  new AppError('validation_failed', 'One or more fields are not valid; see errors.', { errors })

const invalidMfaCode = () => new AppError('invalid_mfa_code')

export function createAuthService(deps: AuthServiceDeps): AuthService {
  const { users, transact, events, hasher, sessions, authStates, clock, hashAttemptedName } = deps
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

  /** A refused login, recorded about the account when one has that name, else about a hash of the name. */
  const recordFailedLogin = (
    username: string,
    user: User | undefined,
    reason: (typeof LOGIN_FAILURE_REASONS)[number],
    client: Client,
  ) =>
    events.record({
      type: 'login.failed',
      context: { actor: { kind: 'anonymous' }, ...client },
      userId: user?.id ?? null,
      detail: user ? { reason } : { reason, usernameHash: hashAttemptedName(usernameKey(username)) },
    })

  /** A failed login (a wrong password or code), counted in the slowdown of the account's `device` count. */
  const countFailure = async (
    account: string,
    device: string,
    user: { id: string } | undefined,
    client: Client,
  ) => {
    const { failures, started } = await lockout.recordFailure(account, device)
    if (user && started !== undefined) {
      await events.record({
        type: 'login.locked',
        context: { actor: { kind: 'anonymous' }, ...client },
        userId: user.id,
        detail: { device: device === OTHERS ? 'others' : 'own', failures, seconds: started },
      })
    }
  }

  /** The answer to a login refused unchecked because its count is slowed down (see login). */
  const slowedDown = (refusedUntil: number, device: string, refusal: () => AppError) =>
    device === OTHERS ? refusal() : waitUntil(refusedUntil)

  /** `429 login_slowed_down`, and how long: for a device token's holder, or a session, who may know why. */
  const waitUntil = (refusedUntil: number) => {
    const wait = Math.max(1, refusedUntil - epochSeconds(clock))
    return new AppError('login_slowed_down', undefined, { headers: { 'retry-after': String(wait) } })
  }

  /**
   * Runs a check of a signed-in user's secrets (their password, a code) under the slowdown of the session's own
   * count: each failure the check counts slows that session down, as failed logins slow a device down, so that a
   * stolen access token gives no more guesses than the login form; the owner's other sessions and devices are
   * never slowed by it. A slowed-down session is refused before anything is checked (`429 login_slowed_down`:
   * it is signed in), so the answer tells nothing of the secrets either.
   */
  const underSessionCount = async <T>(
    user: { id: string; username: string },
    sessionId: string,
    check: (countFailure: () => Promise<void>) => Promise<T>,
    context: EventContext,
  ): Promise<T> => {
    const account = usernameKey(user.username)
    const device = sessionDevice(sessionId)
    const entry = await lockout.enter(account, device)
    try {
      if (entry.refusedUntil > 0) throw waitUntil(entry.refusedUntil)
      const result = await check(() => countFailure(account, device, user, context))
      await lockout.recordSuccess(account, device)
      return result
    } finally {
      entry.leave()
    }
  }

  /**
   * Checks the signed-in user's password, and their second factor when they have one: the authentication
   * methods proved (`amr`), or `reauthentication_failed` for either wrong, alike (underSessionCount).
   */
  const proveAgain = async (
    { userId, sessionId }: { userId: string; sessionId: string },
    proof: Reauthentication,
    context: EventContext,
    count: CountCodeCheck,
  ) => {
    const enrolled = await mfa.isEnabled(userId)
    if (enrolled && proof.code === undefined && proof.recovery_code === undefined) {
      throw invalid([
        { field: '/body/code', message: 'is required: a second factor is enabled (or send recovery_code)' },
      ])
    }
    const user = await users.findById(userId)
    const currentHash = await users.findPasswordHash(userId)
    if (!user || currentHash === undefined) throw new AppError('user_not_found')
    const by = requester(user.username, context.ip ?? undefined)
    const amr = await underSessionCount(
      user,
      sessionId,
      async (countFailure) => {
        if (!(await hasher.verify(currentHash, proof.password, by))) {
          await countFailure()
          throw new AppError('reauthentication_failed')
        }
        if (!enrolled) return ['pwd']
        const giveBack = await count(userId, sessionDevice(sessionId))
        if (!(await mfa.verify(userId, proof, context))) {
          await countFailure()
          throw new AppError('reauthentication_failed')
        }
        await giveBack()
        return ['pwd', 'otp']
      },
      context,
    )
    return { user, amr }
  }

  /**
   * Counts a code check of a login's second step. A client without the account's device token that is past the
   * limit is answered as a wrong code: a 429 would tell it that its MFA token is a live one.
   */
  const countLoginCodeCheck = async (count: CountCodeCheck, user: User, device: string, client: Client) => {
    try {
      return await count(user.id, device)
    } catch (error) {
      if (device !== OTHERS || !(error instanceof AppError) || error.code !== 'rate_limited') throw error
      await recordThrottled(user.username, client, user)
      throw invalidMfaCode()
    }
  }

  /**
   * A throttled login (`rate_limited`), recorded at most once per account and once per address per window:
   * `user` when the caller has it, else looked up by the name.
   */
  const recordThrottled = async (username: string, client: Client, user?: User) => {
    const account = usernameKey(username)
    const keys = [`account:${account}`, ...(client.ip ? [`address:${addressKey(client.ip)}`] : [])]
    if (!firstThrottle(keys)) return
    await recordFailedLogin(
      username,
      user ?? (await users.findByUsernameKey(account)),
      'rate_limited',
      client,
    )
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

  return {
    async register(input, options) {
      const username = normalizeUsername(input.username)
      const usernameIssue =
        usernameProblem(username) ??
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

    async completeLogin(mfaToken, proof, client, count) {
      const challenge = await mfa.openChallenge(mfaToken)
      if (!challenge) throw invalidMfaCode()
      const user = await users.findById(challenge.userId)
      // The password changed, or the user was disabled, since the password step.
      if (!user || user.disabled || user.tokenVersion !== challenge.tokenVersion) {
        await mfa.closeChallenge(challenge)
        throw invalidMfaCode()
      }
      const account = usernameKey(user.username)
      const { device } = challenge
      const entry = await lockout.enter(account, device)
      try {
        if (entry.refusedUntil > 0) {
          await recordFailedLogin(user.username, user, 'slowed_down', client)
          throw slowedDown(entry.refusedUntil, device, invalidMfaCode)
        }
        const giveBack = await countLoginCodeCheck(count, user, device, client)
        const context = { actor: { kind: 'anonymous' as const }, ...client }
        if (!(await mfa.verify(user.id, proof, context))) {
          await recordFailedLogin(user.username, user, 'wrong_code', client)
          await countFailure(account, device, user, client)
          throw invalidMfaCode()
        }
        await giveBack()
        // Of parallel requests with right codes (two recovery codes, say), one completes the login.
        if (!(await mfa.closeChallenge(challenge))) throw invalidMfaCode()
        await lockout.recordSuccess(account, device)
        const grant = await sessions.start(user, client, ['pwd', 'otp'])
        return { grant, device: deviceTokens.issue(account, device === OTHERS ? undefined : device, true) }
      } finally {
        entry.leave()
      }
    },

    async reauthenticate(auth, proof, context, count) {
      const { user, amr } = await proveAgain(auth, proof, context, count)
      return sessions.reauthenticate(user, auth.sessionId, amr, context)
    },

    async removeOwnFactor(auth, proof, context, count) {
      if (!(await mfa.isEnabled(auth.userId))) throw new AppError('mfa_not_enabled')
      await proveAgain(auth, proof, context, count)
      await mfa.remove(auth.userId, context)
    },

    deviceOf: (username, deviceToken) => deviceTokens.verify(usernameKey(username), deviceToken)?.device,

    async changePassword(user, { currentPassword, newPassword }, context) {
      // Before the current password is checked: a refusal here costs no hash, and says nothing about it.
      await newPasswords.check(newPassword, user.username, '/body/newPassword')
      const by = requester(user.username, context.ip ?? undefined)
      const currentHash = await users.findPasswordHash(user.id)
      if (currentHash === undefined) throw new AppError('user_not_found')
      await underSessionCount(
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

    recordThrottledLogin: (username, client) => recordThrottled(username, client),
  }
}
