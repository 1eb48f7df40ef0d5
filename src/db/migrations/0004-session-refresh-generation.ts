// A session counts its refresh-token generations instead of keeping a row per token: storage per session
// stays constant however often it refreshes (decision 0010). Sessions started before keep their
// refresh_tokens rows, which no longer grow, until their next refresh converts them (refresh_generation
// stays NULL until then) and their purge deletes them. Frozen: imports nothing from the app.
import type { Kysely } from 'kysely'

// biome-ignore lint/suspicious/noExplicitAny: a migration is written against the schema of its day, not today's types.
export async function up(db: Kysely<any>): Promise<void> {
  // bigint: a token's generation is an unsigned 32-bit number, beyond PostgreSQL's integer.
  await db.schema.alterTable('sessions').addColumn('refresh_generation', 'bigint').execute()
  await db.schema.alterTable('sessions').addColumn('refreshed_at', 'bigint').execute()
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('refreshed_at').execute()
  await db.schema.alterTable('sessions').dropColumn('refresh_generation').execute()
}

// What down() deletes that holds data (tables, and columns with the value a row has when it was never set):
// `tessera migrate --down` counts it and refuses to lose it without --force. Indexes hold none.
export const dropsOnDown = {
  tables: [],
  columns: [
    { table: 'sessions', column: 'refreshed_at', default: null },
    { table: 'sessions', column: 'refresh_generation', default: null },
  ],
}
