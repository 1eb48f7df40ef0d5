// The security event log (issue 13): append-only, one row per event, written in the transaction of the change
// it records. No foreign keys: the log outlives the users and sessions it names. Frozen: imports nothing from
// the app; portable SQL only.
import type { Kysely } from 'kysely'

// biome-ignore lint/suspicious/noExplicitAny: a migration is written against the schema of its day, not today's types.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('events')
    // A time-ordered UUID (v7): newest first is id descending, and a page cursor is an id.
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('type', 'varchar(64)', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('actor_kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('actor_id', 'varchar(36)')
    .addColumn('user_id', 'varchar(36)')
    .addColumn('session_id', 'varchar(36)')
    .addColumn('ip', 'varchar(64)')
    .addColumn('user_agent', 'varchar(512)')
    // A small JSON object, typed per event type in the app; never a password, token, secret or hash of one.
    .addColumn('detail', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('events_user_id_id').on('events').columns(['user_id', 'id']).execute()
  await db.schema.createIndex('events_type_id').on('events').columns(['type', 'id']).execute()
  await db.schema.createIndex('events_at').on('events').column('at').execute()
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('events').execute()
}

// What down() deletes that holds data (tables, and columns with the value a row has when it was never set):
// `tessera migrate --down` counts it and refuses to lose it without --force. Indexes hold none.
export const dropsOnDown = { tables: ['events'], columns: [] }
