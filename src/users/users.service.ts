// What a user can do to their own profile, and what an admin (or the operator's CLI) can do to any user. Every
// change that affects access (roles, disabled, deletion) is told to the auth state cache, so that it takes
// effect at once. No change may leave the users without an enabled admin (issue 11): the repository refuses
// it in the same step as the write, so two admins demoting each other at once cannot both succeed.
import type { AuthStateCache } from '../access/auth-state.ts'
import { usernameKey } from '../access/username.ts'
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import type { SessionService } from '../sessions/session.service.ts'
import {
  LAST_ADMIN,
  type LastAdmin,
  type User,
  type UserChanges,
  type UserRepository,
} from './user.repository.ts'

export interface UsersService {
  get(id: string): Promise<User>
  /** By username, in any case or Unicode form (as login finds it). */
  getByUsername(username: string): Promise<User>
  updateProfile(id: string, changes: Pick<UserChanges, 'firstName' | 'lastName'>): Promise<User>
  list(options: {
    limit: number
    cursor?: string | undefined
  }): Promise<{ users: User[]; nextCursor: string | null }>
  /** 409 last_admin when it would take the admin role or enabled state from the last enabled admin. */
  adminUpdate(id: string, changes: Pick<UserChanges, 'roles' | 'disabled'>): Promise<User>
  /** 409 last_admin for the last enabled admin. */
  delete(id: string): Promise<void>
}

export type UsersServiceDeps = {
  users: UserRepository
  sessions: SessionService
  authStates: AuthStateCache
  clock: Clock
}

const lastAdmin = () =>
  new AppError(
    'last_admin',
    'This would leave no enabled admin: give another enabled user the admin role first',
  )

export function createUsersService({ users, sessions, authStates, clock }: UsersServiceDeps): UsersService {
  const found = (user: User | undefined | LastAdmin): User => {
    if (user === LAST_ADMIN) throw lastAdmin()
    if (!user) throw new AppError('user_not_found')
    return user
  }
  return {
    get: async (id) => found(await users.findById(id)),

    async getByUsername(username) {
      const user = await users.findByUsernameKey(usernameKey(username))
      if (!user) throw new AppError('user_not_found', `No user "${username}"`)
      return user
    },

    async updateProfile(id, changes) {
      const user = found(await users.update(id, changes, epochSeconds(clock)))
      // GET /auth/me answers from the auth state, which holds the profile.
      authStates.forgetUser(id)
      return user
    },

    async list({ limit, cursor }) {
      // One extra row tells whether there is a next page without a second query.
      const page = await users.list({ limit: limit + 1, after: cursor })
      const hasMore = page.length > limit
      const usersOnPage = hasMore ? page.slice(0, limit) : page
      return { users: usersOnPage, nextCursor: hasMore ? (usersOnPage.at(-1)?.id ?? null) : null }
    },

    async adminUpdate(id, changes) {
      const user = found(await users.update(id, changes, epochSeconds(clock)))
      // Either way the user's remembered states are forgotten (revokeAll does it for the sessions it ends).
      if (changes.disabled === true) await sessions.revokeAll(id, 'user_disabled')
      else authStates.forgetUser(id)
      return user
    },

    async delete(id) {
      // Its sessions and refresh tokens go with it (ON DELETE CASCADE).
      const deleted = await users.delete(id)
      if (deleted === LAST_ADMIN) throw lastAdmin()
      if (!deleted) throw new AppError('user_not_found')
      authStates.forgetUser(id)
    },
  }
}
