// Account recovery and lockout (issue 14). `password_resets`: at most one live reset token per user, stored as
// the hash of its secret part; issuing another replaces it. `login_throttles`: failed logins per account and
// per device, the state of the progressive slowdown (decision 0014). Frozen: imports nothing from the app;
// portable SQL only.
import type { Kysely } from 'kysely'

// biome-ignore lint/suspicious/noExplicitAny: a migration is written against the schema of its day, not today's types.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('password_resets')
    .addColumn('user_id', 'varchar(36)', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    // The token's public half, which finds the row; its secret half is only ever stored as a SHA-256.
    .addColumn('selector', 'varchar(32)', (c) => c.notNull().unique())
    .addColumn('verifier_hash', 'varchar(64)', (c) => c.notNull())
    // The user's token_version when it was issued: a password changed since (which bumps it) ends the token.
    .addColumn('token_version', 'integer', (c) => c.notNull())
    // Who asked: `admin`, `cli` or `self_service`. A self-service request never replaces a person's link.
    .addColumn('issued_via', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema
    .createTable('login_throttles')
    // By username key, not user id: a name no account has is slowed down alike, so the answers never tell.
    .addColumn('username_key', 'varchar(64)', (c) => c.notNull())
    // The device token's id, or '' for every client without a valid one.
    .addColumn('device', 'varchar(32)', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('last_failure_at', 'bigint', (c) => c.notNull())
    .addColumn('locked_until', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('login_throttles_pk', ['username_key', 'device'])
    .execute()
  await db.schema
    .createIndex('login_throttles_last_failure_at')
    .on('login_throttles')
    .column('last_failure_at')
    .execute()
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('login_throttles').execute()
  await db.schema.dropTable('password_resets').execute()
}

// What down() deletes that holds data (tables, and columns with the value a row has when it was never set):
// `tessera migrate --down` counts it and refuses to lose it without --force. Indexes hold none.
export const dropsOnDown = { tables: ['login_throttles', 'password_resets'], columns: [] }
