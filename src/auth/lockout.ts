// Brute-force defence that cannot be turned against the owner (issue 14, decision 0014). Failed logins of an
// account are counted for hours, per device: clients holding a device token of the account (device-tokens.ts)
// each have a counter of their own, and every other client shares one. Past LOCKOUT_FREE_FAILURES a counter
// slows its logins down: each further failure refuses the next logins, unchecked, for a wait that doubles from
// LOCKOUT_BASE_SECONDS up to LOCKOUT_MAX_SECONDS; never a permanent lock. So an attacker without the owner's
// device token slows down only the clients without one, and the owner's own device logs in at once.
// Checks under way count too: once the next failure would slow a count down, its logins are checked one at a
// time (per process), so that parallel guesses cannot all be checked before the first of them fails.
import { usernameKey } from '../access/username.ts'
import type { LockoutConfig } from '../config/load-config.ts'
import type { EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { type LoginThrottle, type LoginThrottleRepository, OTHERS } from './login-throttle.repository.ts'

/** A login check let through (`refusedUntil` 0), or refused unchecked until then (epoch seconds). */
export type LoginEntry = {
  refusedUntil: number
  /** Ends the check, once its outcome is recorded: call it whatever happened. */
  leave(): void
}

export interface Lockout {
  /** Starts a login check of the account from `device`, unless that count is slowed down, or busy (above). */
  enter(usernameKey: string, device: string): Promise<LoginEntry>
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
  /** Checks under way in this process, per account and device. */
  const inFlight = new Map<string, number>()
  const nothingToLeave = () => {}

  return {
    async enter(usernameKey, device) {
      if (off) return { refusedUntil: 0, leave: nothingToLeave }
      const slot = `${usernameKey} ${device}`
      // Counted as under way before the count is read: a check that ends during the read is then counted
      // twice (under way, and read), never not at all.
      const ahead = inFlight.get(slot) ?? 0
      inFlight.set(slot, ahead + 1)
      let left = false
      const leave = () => {
        if (left) return
        left = true
        const remaining = (inFlight.get(slot) ?? 1) - 1
        if (remaining > 0) inFlight.set(slot, remaining)
        else inFlight.delete(slot)
      }
      let throttle: LoginThrottle | undefined
      try {
        throttle = await throttles.find(usernameKey, device, forgetBefore())
      } catch (error) {
        leave()
        throw error
      }
      if (throttle && throttle.lockedUntil > now()) {
        leave()
        return { refusedUntil: throttle.lockedUntil, leave: nothingToLeave }
      }
      // Each check under way may end in a failure: past the free ones, the next waits for it (a second).
      if (ahead > 0 && (throttle?.failures ?? 0) + ahead >= config.freeFailures) {
        leave()
        return { refusedUntil: now() + 1, leave: nothingToLeave }
      }
      return { refusedUntil: 0, leave }
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
