// The webhook outbox (decision 0013): one row per message and endpoint, written in the transaction of the change
// it reports, sent by whichever instance claims it first. Frozen: imports nothing from the app; portable SQL.
import type { Kysely } from 'kysely'

// biome-ignore lint/suspicious/noExplicitAny: a migration is written against the schema of its day, not today's types.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('webhook_deliveries')
    // The Standard Webhooks `webhook-id`: the same on every attempt, so that receivers can deduplicate.
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('endpoint', 'varchar(64)', (c) => c.notNull())
    .addColumn('type', 'varchar(64)', (c) => c.notNull())
    // The body as sent, `{type, timestamp, data}`; emptied once done if the message expires (it holds a secret).
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    // A claim's lease: until then one sender owns the delivery; a sender that dies loses it when it ends.
    .addColumn('locked_until', 'bigint')
    .addColumn('last_attempt_at', 'bigint')
    .addColumn('last_error', 'varchar(200)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('delivered_at', 'bigint')
    // Past it the message is worthless (a reset link that expired): never sent, and its payload erased.
    .addColumn('expires_at', 'bigint')
    .execute()
  await db.schema
    .createIndex('webhook_deliveries_due')
    .on('webhook_deliveries')
    .columns(['status', 'next_attempt_at'])
    .execute()
  await db.schema
    .createIndex('webhook_deliveries_status_id')
    .on('webhook_deliveries')
    .columns(['status', 'id'])
    .execute()
  await db.schema
    .createIndex('webhook_deliveries_created_at')
    .on('webhook_deliveries')
    .column('created_at')
    .execute()
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').execute()
}

// What down() deletes that holds data (tables, and columns with the value a row has when it was never set):
// `tessera migrate --down` counts it and refuses to lose it without --force. Indexes hold none.
export const dropsOnDown = { tables: ['webhook_deliveries'], columns: [] }
