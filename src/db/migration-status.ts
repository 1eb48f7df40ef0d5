// Which migrations a database has, read from Kysely's bookkeeping table: this release's, each applied (when) or
// pending, and those this release does not know, which a newer release applied (`tessera migrate --status`, and
// the check that lets an older release start on a database a newer one migrated).
import { type Kysely, PostgresAdapter, sql } from 'kysely'
import { DEFAULT_MIGRATION_TABLE } from 'kysely/migration'
import { ConfigError } from '../config/load-config.ts'
import { MIGRATIONS } from './migration-list.ts'

export type MigrationStatus = {
  /** This release's migrations, in order; `appliedAt` undefined: pending. */
  known: { name: string; appliedAt: Date | undefined }[]
  /** Applied to the database but unknown to this release (a newer release's), in the order applied. */
  newer: { name: string; appliedAt: Date }[]
}

export async function readMigrationStatus<T>(db: Kysely<T>): Promise<MigrationStatus> {
  const applied = await appliedMigrations(db)
  const known = Object.keys(MIGRATIONS)
    .sort()
    .map((name) => ({ name, appliedAt: applied.get(name) }))
  const newer = [...applied]
    .filter(([name]) => !Object.hasOwn(MIGRATIONS, name))
    .map(([name, appliedAt]) => ({ name, appliedAt }))
    .sort((a, b) => a.appliedAt.getTime() - b.appliedAt.getTime() || a.name.localeCompare(b.name))
  return { known, newer }
}

export const pendingMigrations = (status: MigrationStatus): string[] =>
  status.known.filter((m) => m.appliedAt === undefined).map((m) => m.name)

/**
 * On PostgreSQL, the schema of Kysely's bookkeeping tables: the current one. Unless told, Kysely looks for them
 * in every schema, and another application's tables (or another Tessera's, in its own schema) would pass for ours.
 */
export async function migrationTableSchema<T>(db: Kysely<T>): Promise<string | undefined> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return undefined
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
  const schema = rows[0]?.schema
  if (!schema) {
    throw new ConfigError([
      'DATABASE_URL: PostgreSQL has no current schema; does the schema named in its search_path exist?',
    ])
  }
  return schema
}

type Bookkeeping = { [DEFAULT_MIGRATION_TABLE]: { name: string; timestamp: string } }

async function appliedMigrations<T>(db: Kysely<T>): Promise<Map<string, Date>> {
  const schema = await migrationTableSchema(db)
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true })
  const exists = tables.some(
    (t) => t.name === DEFAULT_MIGRATION_TABLE && (schema === undefined || t.schema === schema),
  )
  if (!exists) return new Map()
  const bookkeeping = db as unknown as Kysely<Bookkeeping>
  const rows = await (schema === undefined ? bookkeeping : bookkeeping.withSchema(schema))
    .selectFrom(DEFAULT_MIGRATION_TABLE)
    .select(['name', 'timestamp'])
    .execute()
  return new Map(rows.map((row) => [row.name, new Date(row.timestamp)]))
}
