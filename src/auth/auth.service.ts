// Registration, login and password change: the seed's login flow, with argon2id, constant-ish timing for
// unknown users, transparent upgrade of old hashes, and token revocation on password change. A new username
// or password must also pass the rules of issue 11 (access/username.ts, password-policy.ts).
import { normalizeUsername, usernameKey, usernameProblem } from '../access/username.ts'
import { isUniqueViolation } from '../db/database-errors.ts'
import { AppError, type FieldError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId, randomToken } from '../lib/ids.ts'
import { addressKey } from '../rate-limits/rate-limiter.ts'
import type { ClientInfo, SessionGrant, SessionService } from '../sessions/session.service.ts'
import type { User, UserRepository } from '../users/user.repository.ts'
import type { HashRequester, PasswordHasher } from './password-hasher.ts'
import { passwordProblem } from './password-policy.ts'

export type Registration = { username: string; password: string; firstName: string; lastName: string }

export interface AuthService {
  /**
   * `ip`: the client's address, when it came over HTTP (the CLI has none). `allowReservedUsername`: for the
   * operator's CLI, which may create the names RESERVED_USERNAMES keeps from the public.
   */
  register(
    input: Registration,
    options?: { roles?: string[]; ip?: string; allowReservedUsername?: boolean },
  ): Promise<User>
  /** Verifies the password and starts a session. */
  login(username: string, password: string, client: ClientInfo): Promise<SessionGrant>
  /**
   * Every session of the user ends: the new password must be used to sign in again. `user.username` is the
   * stored one, which the new password may not contain.
   */
  changePassword(
    user: { id: string; username: string },
    passwordChange: { currentPassword: string; newPassword: string },
    ip: string,
  ): Promise<void>
}

export type AuthServiceDeps = {
  users: UserRepository
  hasher: PasswordHasher
  sessions: SessionService
  clock: Clock
  /** Usernames only the CLI may register (RESERVED_USERNAMES), compared by usernameKey. */
  reservedUsernames: readonly string[]
}

/** Whom a password check counts against in the hash queue (password-hasher.ts). */
const requester = (username: string, ip: string | undefined): HashRequester => ({
  account: usernameKey(username),
  address: ip === undefined ? undefined : addressKey(ip),
})

const invalid = (errors: FieldError[]) =>
  new AppError('validation_failed', 'One or more fields are not valid; see errors.', { errors })

export function createAuthService(deps: AuthServiceDeps): AuthService {
  const { users, hasher, sessions, clock } = deps
  const reserved = new Set(deps.reservedUsernames.map(usernameKey))
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

  return {
    async register(input, options = {}) {
      const username = normalizeUsername(input.username)
      const usernameIssue =
        usernameProblem(username) ??
        (!options.allowReservedUsername && reserved.has(usernameKey(username)) ? 'is reserved' : undefined)
      const passwordIssue = passwordProblem(input.password, username)
      if (usernameIssue || passwordIssue) {
        throw invalid([
          ...(usernameIssue ? [{ field: '/body/username', message: usernameIssue }] : []),
          ...(passwordIssue ? [{ field: '/body/password', message: passwordIssue }] : []),
        ])
      }
      // The account does not exist yet: counted against the address only, so that registering a taken name
      // cannot take the share of that name's owner.
      const address = options.ip === undefined ? undefined : addressKey(options.ip)
      const passwordHash = await hasher.hash(input.password, { address })
      const now = epochSeconds(clock)
      try {
        return await users.insert({
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
      } catch (error) {
        if (isUniqueViolation(error))
          throw new AppError('username_taken', `The username "${username}" is taken`)
        throw error
      }
    },

    async login(username, password, client) {
      const found = await users.findCredentials(usernameKey(username))
      const by = requester(username, client.ip)
      if (!found) {
        await hasher.verify(await getDummyHash(), password, by)
        throw new AppError('invalid_credentials')
      }
      const { user, passwordHash } = found
      if (!(await hasher.verify(passwordHash, password, by)) || user.disabled) {
        throw new AppError('invalid_credentials')
      }
      if (hasher.needsRehash(passwordHash)) {
        await users.setPasswordHash(user.id, await hasher.hash(password, by), epochSeconds(clock))
      }
      return sessions.start(user, client)
    },

    async changePassword(user, { currentPassword, newPassword }, ip) {
      // Before the current password is checked: a refusal here costs no hash, and says nothing about it.
      const passwordIssue = passwordProblem(newPassword, user.username)
      if (passwordIssue) throw invalid([{ field: '/body/newPassword', message: passwordIssue }])
      const by = requester(user.username, ip)
      const currentHash = await users.findPasswordHash(user.id)
      if (currentHash === undefined) throw new AppError('user_not_found')
      if (!(await hasher.verify(currentHash, currentPassword, by))) {
        throw new AppError('invalid_current_password')
      }
      await users.changePassword(user.id, await hasher.hash(newPassword, by), epochSeconds(clock))
      await sessions.revokeAll(user.id, 'password_changed')
    },
  }
}
