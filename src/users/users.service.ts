// What a user can do to their own profile, and what an admin (or the operator's CLI) can do to any user. Every
// change that affects access (roles, disabled, deletion) is told to the auth state cache, so that it takes
// effect at once. No change may leave the users without an enabled admin (issue 11): the repository refuses
// it in the same step as the write, so two admins demoting each other at once cannot both succeed. Each change
// and the security events that record it (who did it, what exactly changed) are written in one transaction.
import type { AuthStateCache } from '../access/auth-state.ts'
import { usernameKey } from '../access/username.ts'
import type { Transact } from '../db/transact.ts'
import type { EventContext, NewEvent } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import type { SessionRepository } from '../sessions/session.repository.ts'
import {
  LAST_ADMIN,
  type LastAdmin,
  type User,
  type UserChanges,
  type UserRepository,
  type UserUpdate,
} from './user.repository.ts'

export interface UsersService {
  get(id: string): Promise<User>
  /** By username, in any case or Unicode form (as login finds it). */
  getByUsername(username: string): Promise<User>
  /** The signed-in user's own change (`context`: theirs); records `user.updated` when a field changed. */
  updateProfile(
    id: string,
    changes: Pick<UserChanges, 'firstName' | 'lastName'>,
    context: EventContext,
  ): Promise<User>
  /** A page of users; with `externalId`, only the user who has it (a page of one, or an empty one). */
  list(options: {
    limit: number
    cursor?: string | undefined
    externalId?: string | undefined
  }): Promise<{ users: User[]; nextCursor: string | null }>
  /**
   * An admin's (or the CLI's) change; records each role granted or revoked, and the user disabled or enabled.
   * 409 last_admin when it would take the admin role or enabled state from the last enabled admin.
   */
  adminUpdate(
    id: string,
    changes: Pick<UserChanges, 'roles' | 'disabled'>,
    context: EventContext,
  ): Promise<User>
  /** 409 last_admin for the last enabled admin. */
  delete(id: string, context: EventContext): Promise<void>
}

/** What a user change and its events are written with, in one transaction. */
export type UsersStore = { users: UserRepository; sessions: SessionRepository; events: EventWriter }

export type UsersServiceDeps = {
  /** Reads. */
  users: UserRepository
  /** Writes, each with the events that record it, in one transaction. */
  transact: Transact<UsersStore>
  authStates: AuthStateCache
  clock: Clock
}

const lastAdmin = () =>
  new AppError(
    'last_admin',
    'This would leave no enabled admin: give another enabled user the admin role first',
  )

const PROFILE_FIELDS = ['firstName', 'lastName'] as const

/** The events that record an admin's change: what it actually changed, from the user before and after. */
function adminChangeEvents({ before, after }: UserUpdate, context: EventContext, sessionsRevoked: number) {
  const about = { context, userId: after.id }
  const events: NewEvent[] = [
    ...after.roles
      .filter((role) => !before.roles.includes(role))
      .map((role): NewEvent => ({ ...about, type: 'role.granted', detail: { role } })),
    ...before.roles
      .filter((role) => !after.roles.includes(role))
      .map((role): NewEvent => ({ ...about, type: 'role.revoked', detail: { role } })),
  ]
  if (!before.disabled && after.disabled) {
    events.push({ ...about, type: 'user.disabled', detail: { sessionsRevoked } })
  }
  if (before.disabled && !after.disabled) events.push({ ...about, type: 'user.enabled' })
  return events
}

export function createUsersService({ users, transact, authStates, clock }: UsersServiceDeps): UsersService {
  const found = <T>(result: T | undefined | LastAdmin): T => {
    if (result === LAST_ADMIN) throw lastAdmin()
    if (!result) throw new AppError('user_not_found')
    return result
  }
  return {
    get: async (id) => found(await users.findById(id)),

    async getByUsername(username) {
      const user = await users.findByUsernameKey(usernameKey(username))
      if (!user) throw new AppError('user_not_found', `No user "${username}"`)
      return user
    },

    async updateProfile(id, changes, context) {
      const user = await transact(async (store) => {
        const { before, after } = found(await store.users.update(id, changes, epochSeconds(clock)))
        const fields = PROFILE_FIELDS.filter((field) => before[field] !== after[field])
        if (fields.length > 0) {
          await store.events.record({ type: 'user.updated', context, userId: id, detail: { fields } })
        }
        return after
      })
      // GET /auth/me answers from the auth state, which holds the profile.
      authStates.forgetUser(id)
      return user
    },

    async list({ limit, cursor, externalId }) {
      if (externalId !== undefined) {
        const user = await users.findByExternalId(externalId)
        return { users: user && (cursor === undefined || user.id > cursor) ? [user] : [], nextCursor: null }
      }
      // One extra row tells whether there is a next page without a second query.
      const page = await users.list({ limit: limit + 1, after: cursor })
      const hasMore = page.length > limit
      const usersOnPage = hasMore ? page.slice(0, limit) : page
      return { users: usersOnPage, nextCursor: hasMore ? (usersOnPage.at(-1)?.id ?? null) : null }
    },

    async adminUpdate(id, changes, context) {
      const user = await transact(async (store) => {
        const now = epochSeconds(clock)
        const update = found(await store.users.update(id, changes, now))
        // A disabled user's sessions end with the change that disables them.
        const sessionsRevoked =
          !update.before.disabled && update.after.disabled
            ? await store.sessions.revokeAllForUser(id, 'user_disabled', now)
            : 0
        for (const event of adminChangeEvents(update, context, sessionsRevoked)) {
          await store.events.record(event)
        }
        return update.after
      })
      // The user's remembered states are forgotten: roles, the disabled flag and sessions are in them.
      authStates.forgetUser(id)
      return user
    },

    async delete(id, context) {
      // Its sessions and refresh tokens go with it (ON DELETE CASCADE).
      await transact(async (store) => {
        const deleted = found(await store.users.delete(id))
        await store.events.record({
          type: 'user.deleted',
          context,
          userId: id,
          detail: { username: deleted.username },
        })
      })
      authStates.forgetUser(id)
    },
  }
}
