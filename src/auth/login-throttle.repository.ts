// Failed logins per account and device: the counters behind the progressive slowdown (lockout.ts). Keyed by
// username key, whether or not an account has that name, so that a name nobody has is slowed down alike.
import { createHash } from 'node:crypto'
import type { Db } from '../db/database.ts'

/** '' : every client that holds no device token valid for the account. */
export const OTHERS = ''

export type LoginThrottle = {
  /** A device token's id, or OTHERS. */
  device: string
  failures: number
  lastFailureAt: number
  /** Until then (epoch seconds) logins from this device, or from others, are refused unchecked. */
  lockedUntil: number
}

export interface LoginThrottleRepository {
  /** The counter of the account and device; one whose last failure is before `forgetBefore` counts as none. */
  find(usernameKey: string, device: string, forgetBefore: number): Promise<LoginThrottle | undefined>
  /**
   * Counts one failure, atomically (parallel failures all count): the first, when the last one was before
   * `forgetBefore`. Resolves to the count.
   */
  addFailure(usernameKey: string, device: string, now: number, forgetBefore: number): Promise<number>
  /** Refuses logins until `until` (never shortens a longer wait). */
  lockUntil(usernameKey: string, device: string, until: number): Promise<void>
  /** Forgets the failures of one device, or of every device and others; resolves to the counters removed. */
  forget(usernameKey: string, device?: string): Promise<number>
  /** Every counter of the account still remembered, others first. */
  list(usernameKey: string, forgetBefore: number): Promise<LoginThrottle[]>
  /** Deletes the counters whose last failure is before `before`; resolves to how many. */
  purge(before: number): Promise<number>
}

const COLUMNS = ['device', 'failures', 'last_failure_at', 'locked_until'] as const

const toThrottle = (row: {
  device: string
  failures: number
  last_failure_at: number
  locked_until: number
}): LoginThrottle => ({
  device: row.device,
  failures: Number(row.failures),
  lastFailureAt: Number(row.last_failure_at),
  lockedUntil: Number(row.locked_until),
})

/** What the username_key column holds: the key, or, for one longer than the column, its SHA-256 (hex, 64). */
const KEY_COLUMN_LENGTH = 64
// No username is that long (at most 32 characters), but a login may type one (a 500 on PostgreSQL, found by an
// outside attack), and must be counted like any other name.
const storedKey = (usernameKey: string) =>
  usernameKey.length <= KEY_COLUMN_LENGTH
    ? usernameKey
    : createHash('sha256').update(usernameKey).digest('hex')

export function createLoginThrottleRepository(db: Db): LoginThrottleRepository {
  return {
    async find(usernameKey, device, forgetBefore) {
      const row = await db
        .selectFrom('login_throttles')
        .select(COLUMNS)
        .where('username_key', '=', storedKey(usernameKey))
        .where('device', '=', device)
        .where('last_failure_at', '>=', forgetBefore)
        .executeTakeFirst()
      return row && toThrottle(row)
    },

    async addFailure(usernameKey, device, now, forgetBefore) {
      const row = await db
        .insertInto('login_throttles')
        .values({
          username_key: storedKey(usernameKey),
          device,
          failures: 1,
          last_failure_at: now,
          locked_until: 0,
        })
        .onConflict((oc) =>
          oc.columns(['username_key', 'device']).doUpdateSet((eb) => {
            const forgotten = eb('login_throttles.last_failure_at', '<', forgetBefore)
            return {
              failures: eb
                .case()
                .when(forgotten)
                .then(1)
                .else(eb('login_throttles.failures', '+', 1))
                .end(),
              locked_until: eb
                .case()
                .when(forgotten)
                .then(0)
                .else(eb.ref('login_throttles.locked_until'))
                .end(),
              last_failure_at: now,
            }
          }),
        )
        .returning('failures')
        .executeTakeFirstOrThrow()
      return Number(row.failures)
    },

    async lockUntil(usernameKey, device, until) {
      await db
        .updateTable('login_throttles')
        .set({ locked_until: until })
        .where('username_key', '=', storedKey(usernameKey))
        .where('device', '=', device)
        .where('locked_until', '<', until)
        .execute()
    },

    async forget(usernameKey, device) {
      let query = db.deleteFrom('login_throttles').where('username_key', '=', storedKey(usernameKey))
      if (device !== undefined) query = query.where('device', '=', device)
      return Number((await query.executeTakeFirst()).numDeletedRows)
    },

    async list(usernameKey, forgetBefore) {
      const rows = await db
        .selectFrom('login_throttles')
        .select(COLUMNS)
        .where('username_key', '=', storedKey(usernameKey))
        .where('last_failure_at', '>=', forgetBefore)
        .orderBy('device')
        .execute()
      return rows.map(toThrottle)
    },

    async purge(before) {
      const result = await db
        .deleteFrom('login_throttles')
        .where('last_failure_at', '<', before)
        .executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}
