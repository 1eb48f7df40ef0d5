// Every authenticated request checks that the token's session is still live and that its user still exists,
// is not disabled, and has not changed password since the token was issued. This keeps that check off the
// database for most requests: states are remembered for a short, configurable time, and forgotten at once
// when this process changes them (and, with Redis, when any instance does: revocation-broadcast.ts). See
// docs/decisions/0004-revocation-check.md.
import type { Clock } from '../lib/clock.ts'

/** What one joined read of a session and its user says about the access tokens of that session. */
export type AccessState = {
  userId: string
  /** The user's profile, read in the same row: GET /auth/me answers from it. */
  username: string
  firstName: string
  lastName: string
  createdAt: number
  updatedAt: number
  externalId: string | null
  roles: string[]
  disabled: boolean
  tokenVersion: number
  /** Revoked, or started before the user's last password change. */
  sessionRevoked: boolean
  sessionExpiresAt: number
  sessionLastUsedAt: number
  /**
   * When the user's second factor was confirmed (epoch seconds), or null without one: a step-up can ask for it,
   * and only sign-ins with it since count.
   */
  mfaEnabledAt: number | null
}

export type LoadAccessState = (sessionId: string) => Promise<AccessState | undefined>

export interface AuthStateCache {
  /**
   * The session's current state, or undefined when the session (or its user) no longer exists. A remembered
   * state answers at once, without a promise: the hot path of every authenticated request.
   */
  get(sessionId: string): AccessState | undefined | Promise<AccessState | undefined>
  /** Called after every change to a user's roles, disabled flag, password, second factor or existence. */
  forgetUser(userId: string): void
  /** Called after a session is revoked. */
  forgetSession(sessionId: string): void
  /** Called when revocations made elsewhere may have been missed (the broadcast was down). */
  forgetAll(): void
}

const MAX_ENTRIES = 10_000

export function createAuthStateCache(load: LoadAccessState, clock: Clock, ttlMs: number): AuthStateCache {
  const entries = new Map<string, { state: AccessState | undefined; expiresAt: number }>()
  // A read that started before a forget may return the old state; it must not be remembered.
  let forgets = 0
  return {
    get(sessionId) {
      const now = clock.now()
      const cached = entries.get(sessionId)
      if (cached && cached.expiresAt > now) return cached.state
      const forgetsBefore = forgets
      return load(sessionId).then((state) => {
        if (ttlMs > 0 && forgets === forgetsBefore) {
          entries.delete(sessionId)
          if (entries.size >= MAX_ENTRIES) {
            const oldest = entries.keys().next().value
            if (oldest !== undefined) entries.delete(oldest)
          }
          entries.set(sessionId, { state, expiresAt: now + ttlMs })
        }
        return state
      })
    },
    forgetUser(userId) {
      forgets++
      // Rare (an admin action or a password change), so a scan beats keeping a second index.
      for (const [sessionId, entry] of entries) {
        if (entry.state?.userId === userId) entries.delete(sessionId)
      }
    },
    forgetSession(sessionId) {
      forgets++
      entries.delete(sessionId)
    },
    forgetAll() {
      forgets++
      entries.clear()
    },
  }
}
