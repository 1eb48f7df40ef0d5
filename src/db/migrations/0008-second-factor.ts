// A second factor (issue 15). `totp_factors`: a user's TOTP secret (sealed under KEY_ENCRYPTION_SECRET when set),
// pending until its first code confirms it, and the last time step a code was accepted for, so that no code is
// accepted twice. `recovery_codes`: single-use, only as an HMAC. `mfa_challenges`: the second step of a login
// whose password was right, its secret half only as a SHA-256. `sessions` learn how and when their user
// authenticated (`amr`, `auth_time` in access tokens). Frozen: imports nothing from the app; portable SQL only.
import type { Kysely } from 'kysely'

// biome-ignore lint/suspicious/noExplicitAny: a migration is written against the schema of its day, not today's types.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('totp_factors')
    .addColumn('user_id', 'varchar(36)', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    // NULL while the enrolment waits for its first code.
    .addColumn('confirmed_at', 'bigint')
    .addColumn('last_used_step', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute()
  await db.schema
    .createTable('recovery_codes')
    .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('code_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addPrimaryKeyConstraint('recovery_codes_pk', ['user_id', 'code_hash'])
    .execute()
  await db.schema
    .createTable('mfa_challenges')
    // The token's public half, which finds the row.
    .addColumn('selector', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('verifier_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    // The user's token_version when the password was checked: a password changed since ends the challenge.
    .addColumn('token_version', 'integer', (c) => c.notNull())
    // The device token's id the password step carried, or '' for none (lockout counts per device).
    .addColumn('device', 'varchar(32)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('mfa_challenges_expires_at').on('mfa_challenges').column('expires_at').execute()
  // NULL for sessions started before: read as a password sign-in at the session's start.
  await db.schema.alterTable('sessions').addColumn('auth_time', 'bigint').execute()
  await db.schema.alterTable('sessions').addColumn('amr', 'varchar(32)').execute()
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('amr').execute()
  await db.schema.alterTable('sessions').dropColumn('auth_time').execute()
  await db.schema.dropTable('mfa_challenges').execute()
  await db.schema.dropTable('recovery_codes').execute()
  await db.schema.dropTable('totp_factors').execute()
}

// What down() deletes that holds data (tables, and columns with the value a row has when it was never set):
// `tessera migrate --down` counts it and refuses to lose it without --force. Indexes hold none.
export const dropsOnDown = {
  tables: ['mfa_challenges', 'recovery_codes', 'totp_factors'],
  columns: [
    { table: 'sessions', column: 'amr', default: null },
    { table: 'sessions', column: 'auth_time', default: null },
  ],
}
