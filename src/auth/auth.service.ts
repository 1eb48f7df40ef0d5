// Registration, login and password change: the seed's login flow, with argon2id, constant-ish timing for
// unknown users, transparent upgrade of old hashes, and token revocation on password change.
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId, randomToken } from '../lib/ids.ts'
import type { ClientInfo, SessionGrant, SessionService } from '../sessions/session.service.ts'
import { isUniqueViolation, type User, type UserRepository } from '../users/user.repository.ts'
import { isValidUsername, normalizeUsername, usernameKey } from '../users/username.ts'
import type { AuthStateCache } from './auth-state.ts'
import type { PasswordHasher } from './password-hasher.ts'

export type Registration = { username: string; password: string; firstName: string; lastName: string }

export interface AuthService {
  register(input: Registration, options?: { roles?: string[] }): Promise<User>
  /** Verifies the password and starts a session. */
  login(username: string, password: string, client: ClientInfo): Promise<SessionGrant>
  changePassword(userId: string, currentPassword: string, newPassword: string): Promise<void>
}

export type AuthServiceDeps = {
  users: UserRepository
  hasher: PasswordHasher
  sessions: SessionService
  authStates: AuthStateCache
  clock: Clock
}

export function createAuthService({
  users,
  hasher,
  sessions,
  authStates,
  clock,
}: AuthServiceDeps): AuthService {
  // Verifying against this when the user does not exist makes "no such user" cost the same as "wrong
  // password", so response times do not reveal which usernames exist.
  let dummyHash: Promise<string> | undefined
  const getDummyHash = () => {
    dummyHash ??= hasher.hash(randomToken(32))
    return dummyHash
  }

  return {
    async register(input, options = {}) {
      const username = normalizeUsername(input.username)
      if (!isValidUsername(username)) {
        throw new AppError('validation_failed', 'One or more fields are not valid; see errors.', {
          errors: [{ field: '/body/username', message: 'is not a valid username once normalized' }],
        })
      }
      const passwordHash = await hasher.hash(input.password)
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
      if (!found) {
        await hasher.verify(await getDummyHash(), password)
        throw new AppError('invalid_credentials')
      }
      const { user, passwordHash } = found
      if (!(await hasher.verify(passwordHash, password)) || user.disabled) {
        throw new AppError('invalid_credentials')
      }
      if (hasher.needsRehash(passwordHash)) {
        await users.setPasswordHash(user.id, await hasher.hash(password), epochSeconds(clock))
      }
      return sessions.start(user, client)
    },

    async changePassword(userId, currentPassword, newPassword) {
      const currentHash = await users.findPasswordHash(userId)
      if (currentHash === undefined) throw new AppError('user_not_found')
      if (!(await hasher.verify(currentHash, currentPassword))) throw new AppError('invalid_current_password')
      await users.changePassword(userId, await hasher.hash(newPassword), epochSeconds(clock))
      await sessions.revokeAll(userId, 'password_changed')
      authStates.forgetUser(userId)
    },
  }
}
