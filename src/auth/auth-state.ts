// Every authenticated request checks that the token's user still exists, is not disabled, and has not
// changed password since the token was issued. This keeps that check off the database for most requests:
// states are remembered for a short, configurable time, and forgotten at once when this process changes them.
import type { Clock } from '../lib/clock.ts'
import type { UserAuthState, UserRepository } from '../users/user.repository.ts'

export interface AuthStateCache {
  /** The user's current state, or undefined when the user no longer exists. */
  get(userId: string): Promise<UserAuthState | undefined>
  /** Called after every change to a user's roles, disabled flag, password or existence. */
  forget(userId: string): void
}

const MAX_ENTRIES = 10_000

export function createAuthStateCache(users: UserRepository, clock: Clock, ttlMs: number): AuthStateCache {
  const entries = new Map<string, { state: UserAuthState | undefined; expiresAt: number }>()
  // A read that started before a forget() may return the old state; it must not be remembered.
  let forgets = 0
  return {
    async get(userId) {
      const now = clock.now()
      const cached = entries.get(userId)
      if (cached && cached.expiresAt > now) return cached.state
      const forgetsBefore = forgets
      const state = await users.findAuthState(userId)
      if (ttlMs > 0 && forgets === forgetsBefore) {
        entries.delete(userId)
        if (entries.size >= MAX_ENTRIES) {
          const oldest = entries.keys().next().value
          if (oldest !== undefined) entries.delete(oldest)
        }
        entries.set(userId, { state, expiresAt: now + ttlMs })
      }
      return state
    },
    forget(userId) {
      forgets++
      entries.delete(userId)
    },
  }
}
