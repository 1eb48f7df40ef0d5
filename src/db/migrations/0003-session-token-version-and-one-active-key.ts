// Sessions remember the user's token version they were started under, so that a login racing a password
// change cannot outlive it; and at most one signing key is active, enforced by the database so that two
// instances starting at once cannot both activate one. Frozen: imports nothing from the app.
import { type Kysely, sql } from 'kysely'

// biome-ignore lint/suspicious/noExplicitAny: a migration is written against the schema of its day, not today's types.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('sessions')
    .addColumn('token_version', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
  await db.schema
    .createIndex('signing_keys_one_active')
    .on('signing_keys')
    .column('state')
    .unique()
    .where(sql.ref('state'), '=', 'active')
    .execute()
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('signing_keys_one_active').execute()
  await db.schema.alterTable('sessions').dropColumn('token_version').execute()
}

// What down() deletes that holds data (tables, and columns with the value a row has when it was never set):
// `tessera migrate --down` counts it and refuses to lose it without --force. Indexes hold none.
export const dropsOnDown = {
  tables: [],
  columns: [{ table: 'sessions', column: 'token_version', default: 0 }],
}
