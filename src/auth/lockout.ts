// Brute-force defence that cannot be turned against the owner (issue 14, decision 0014). Failed logins of an
// account are counted for hours, per device: clients holding a device token of the account (device-tokens.ts)
// each have a counter of their own, and every other client shares one. Past LOCKOUT_FREE_FAILURES a counter
// slows its logins down: each further failure refuses the next logins, unchecked, for a wait that doubles from
// LOCKOUT_BASE_SECONDS up to LOCKOUT_MAX_SECONDS; never a permanent lock. So an attacker without the owner's
// device token slows down only the clients without one, and the owner's own device logs in at once.
import { usernameKey } from '../access/username.ts'
import type { LockoutConfig } from '../config/load-config.ts'
import type { EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { type LoginThrottle, type LoginThrottleRepository, OTHERS } from './login-throttle.repository.ts'

export interface Lockout {
  /** Until when (epoch seconds) logins of the account from `device` are refused unchecked; 0 if they are not. */
  slowedUntil(usernameKey: string, device: string): Promise<number>
  /** Counts a failed login; `started`: the first wait, when this failure began the slowdown. */
  recordFailure(usernameKey: string, device: string): Promise<{ failures: number; started?: number }>
  /** A successful login forgets its own device's failures (never those of others: the attacker's stay). */
  recordSuccess(usernameKey: string, device: string): Promise<void>
  /** The counters still remembered, and whether each is slowing logins down now. */
  state(usernameKey: string): Promise<(LoginThrottle & { slowed: boolean })[]>
  /** Forgets every counter of the user's account, and records it (`login.unlocked`). */
  unlock(user: { id: string; username: string }, context: EventContext): Promise<number>
  /** Deletes counters forgotten by now (LOCKOUT_RESET_HOURS after their last failure). */
  purge(): Promise<number>
}

/** The wait after `failures` failures: 0 up to the free ones, then doubling from the base to the cap. */
export function slowdownSeconds(failures: number, config: LockoutConfig): number {
  if (config.baseSeconds === 0 || failures <= config.freeFailures) return 0
  const doublings = Math.min(failures - config.freeFailures - 1, 30)
  return Math.min(config.maxSeconds, config.baseSeconds * 2 ** doublings)
}

export function createLockout(
  throttles: LoginThrottleRepository,
  events: EventWriter,
  clock: Clock,
  config: LockoutConfig,
): Lockout {
  const now = () => epochSeconds(clock)
  const forgetBefore = () => now() - config.resetSeconds
  const off = config.baseSeconds === 0

  return {
    async slowedUntil(usernameKey, device) {
      if (off) return 0
      const throttle = await throttles.find(usernameKey, device, forgetBefore())
      return throttle && throttle.lockedUntil > now() ? throttle.lockedUntil : 0
    },

    async recordFailure(usernameKey, device) {
      if (off) return { failures: 0 }
      const at = now()
      const failures = await throttles.addFailure(usernameKey, device, at, forgetBefore())
      const wait = slowdownSeconds(failures, config)
      if (wait === 0) return { failures }
      await throttles.lockUntil(usernameKey, device, at + wait)
      return failures === config.freeFailures + 1 ? { failures, started: wait } : { failures }
    },

    async recordSuccess(usernameKey, device) {
      if (device !== OTHERS) await throttles.forget(usernameKey, device)
    },

    async state(usernameKey) {
      const at = now()
      return (await throttles.list(usernameKey, forgetBefore())).map((throttle) => ({
        ...throttle,
        slowed: throttle.lockedUntil > at,
      }))
    },

    async unlock(user, context) {
      const cleared = await throttles.forget(usernameKey(user.username))
      await events.record({
        type: 'login.unlocked',
        context,
        userId: user.id,
        detail: { throttles: cleared },
      })
      return cleared
    },

    purge: () => throttles.purge(forgetBefore()),
  }
}
