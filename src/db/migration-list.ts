// The migrations this release knows, in order: listed explicitly, so that adding one is a reviewed change. Each
// declares what its `down` drops; the type below makes a migration without that declaration fail to compile.
import type { Kysely } from 'kysely'
import * as m0001 from './migrations/0001-users-and-signing-keys.ts'
import * as m0002 from './migrations/0002-sessions.ts'
import * as m0003 from './migrations/0003-session-token-version-and-one-active-key.ts'
import * as m0004 from './migrations/0004-session-refresh-generation.ts'
import * as m0005 from './migrations/0005-events.ts'
import * as m0006 from './migrations/0006-webhook-deliveries.ts'
import * as m0007 from './migrations/0007-password-resets-and-login-throttles.ts'
import * as m0008 from './migrations/0008-second-factor.ts'
import * as m0009 from './migrations/0009-user-external-ids.ts'

/**
 * What a migration's `down` deletes that can hold data: whole tables, and columns, each with the value of a
 * row that never set it (null, or the column's default). A rollback counts what differs before dropping it.
 */
export type DownDrops = {
  readonly tables: readonly string[]
  readonly columns: readonly { table: string; column: string; default: string | number | null }[]
}

export type TesseraMigration = {
  // biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their day.
  up(db: Kysely<any>): Promise<void>
  // biome-ignore lint/suspicious/noExplicitAny: see up().
  down(db: Kysely<any>): Promise<void>
  dropsOnDown: DownDrops
}

export const MIGRATIONS: Readonly<Record<string, TesseraMigration>> = {
  '0001-users-and-signing-keys': m0001,
  '0002-sessions': m0002,
  '0003-session-token-version-and-one-active-key': m0003,
  '0004-session-refresh-generation': m0004,
  '0005-events': m0005,
  '0006-webhook-deliveries': m0006,
  '0007-password-resets-and-login-throttles': m0007,
  '0008-second-factor': m0008,
  '0009-user-external-ids': m0009,
}
