// What a user can do to their own profile, and what an admin can do to any user. Every change that affects
// access (roles, disabled, deletion) is told to the auth state cache, so that it takes effect at once.
import type { AuthStateCache } from '../access/auth-state.ts'
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import type { SessionService } from '../sessions/session.service.ts'
import type { User, UserChanges, UserRepository } from './user.repository.ts'

export interface UsersService {
  get(id: string): Promise<User>
  updateProfile(id: string, changes: Pick<UserChanges, 'firstName' | 'lastName'>): Promise<User>
  list(options: {
    limit: number
    cursor?: string | undefined
  }): Promise<{ users: User[]; nextCursor: string | null }>
  adminUpdate(id: string, changes: Pick<UserChanges, 'roles' | 'disabled'>): Promise<User>
  delete(id: string): Promise<void>
}

export type UsersServiceDeps = {
  users: UserRepository
  sessions: SessionService
  authStates: AuthStateCache
  clock: Clock
}

export function createUsersService({ users, sessions, authStates, clock }: UsersServiceDeps): UsersService {
  const found = (user: User | undefined): User => {
    if (!user) throw new AppError('user_not_found')
    return user
  }
  return {
    get: async (id) => found(await users.findById(id)),

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
      if (!(await users.delete(id))) throw new AppError('user_not_found')
      authStates.forgetUser(id)
    },
  }
}
