// An external id per user (issue 18): the id a user had in the system they were imported from (the Flask app's
// integer `user.id`), so that that system's own tables can be linked to Tessera's users. Expand-only: a
// nullable column with a unique index (several NULLs are allowed on both dialects), which the previous release
// neither reads nor writes. On PostgreSQL the username columns also widen from 64 to 254 characters, so that a
// USERNAME_MAX_LENGTH up to an email address's 254 fits (SQLite does not enforce a varchar's length); widening a
// varchar rewrites nothing there, and the previous release writes only shorter names. Frozen: imports nothing
// from the app.
import { type Kysely, PostgresAdapter } from 'kysely'

// biome-ignore lint/suspicious/noExplicitAny: a migration is written against the schema of its day, not today's types.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('external_id', 'varchar(128)').execute()
  await db.schema.createIndex('users_external_id').on('users').column('external_id').unique().execute()
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await db.schema
      .alterTable('users')
      .alterColumn('username', (column) => column.setDataType('varchar(254)'))
      .execute()
    await db.schema
      .alterTable('users')
      .alterColumn('username_key', (column) => column.setDataType('varchar(254)'))
      .execute()
  }
}

// The username columns stay wide: narrowing them would fail on a longer name, and a wider column costs nothing.
// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('users_external_id').execute()
  await db.schema.alterTable('users').dropColumn('external_id').execute()
}

// What down() deletes that holds data (tables, and columns with the value a row has when it was never set):
// `tessera migrate --down` counts it and refuses to lose it without --force. Indexes hold none.
export const dropsOnDown = { tables: [], columns: [{ table: 'users', column: 'external_id', default: null }] }
