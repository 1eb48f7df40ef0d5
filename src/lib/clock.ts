// The one source of "now" for everything time-sensitive (token expiry, timestamps), so tests can move time
// instead of sleeping.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

export function epochSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000)
}

/** A clock that stands still until a test moves it. */
export function createFixedClock(startMs = Date.UTC(2026, 0, 1)): Clock & { advance(ms: number): void } {
  let current = startMs
  return {
    now: () => current,
    advance(ms: number) {
      current += ms
    },
  }
}

/** Epoch seconds (as stored, and as in `iat`/`exp`) as an ISO 8601 date-time, the API's format for times. */
export function isoTime(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString()
}
