// Applies the migrations in src/db/migrations, in order, at start and from `tessera migrate`: the
// replacement for the seed's `db.create_all()`. Listed explicitly so that adding one is a reviewed change.
import { type Kysely, PostgresAdapter, sql } from 'kysely'
import { type Migration, type MigrationResultSet, Migrator } from 'kysely/migration'
import { ConfigError, isPostgresUrl } from '../config/load-config.ts'
import { createDb, type DatabaseConfig } from './create-db.ts'
import type { Db } from './database.ts'
import * as m0001 from './migrations/0001-users-and-signing-keys.ts'
import * as m0002 from './migrations/0002-sessions.ts'
import * as m0003 from './migrations/0003-session-token-version-and-one-active-key.ts'
import * as m0004 from './migrations/0004-session-refresh-generation.ts'
import * as m0005 from './migrations/0005-events.ts'
import * as m0006 from './migrations/0006-webhook-deliveries.ts'
import * as m0007 from './migrations/0007-password-resets-and-login-throttles.ts'
import * as m0008 from './migrations/0008-second-factor.ts'

const MIGRATIONS: Record<string, Migration> = {
  '0001-users-and-signing-keys': m0001,
  '0002-sessions': m0002,
  '0003-session-token-version-and-one-active-key': m0003,
  '0004-session-refresh-generation': m0004,
  '0005-events': m0005,
  '0006-webhook-deliveries': m0006,
  '0007-password-resets-and-login-throttles': m0007,
  '0008-second-factor': m0008,
}

/**
 * Migrates the database of `config` on a connection of its own without a statement timeout: a migration may
 * take longer than any request should, and so may waiting for another instance's migration (the lock).
 * SQLite has no such timeout and takes the app's own connection, which `db` is.
 */
export async function migrateDatabase(config: DatabaseConfig, db: Db): Promise<MigrationResultSet> {
  if (!isPostgresUrl(config.url)) return migrateToLatest(db)
  const unbounded = createDb({ ...config, statementTimeoutMs: 0, poolSize: 1 })
  try {
    return await migrateToLatest(unbounded)
  } finally {
    await unbounded.destroy()
  }
}

export async function migrateToLatest<T>(db: Kysely<T>): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    // On PostgreSQL, Kysely looks for its bookkeeping tables in every schema unless told which: another
    // application's tables (or another Tessera's, in its own schema) would pass for ours.
    ...(db.getExecutor().adapter instanceof PostgresAdapter
      ? { migrationTableSchema: await currentSchema(db) }
      : {}),
  })
  const result = await migrator.migrateToLatest()
  if (result.error) throw result.error
  return result
}

async function currentSchema<T>(db: Kysely<T>): Promise<string> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
  const schema = rows[0]?.schema
  if (!schema) {
    throw new ConfigError([
      'DATABASE_URL: PostgreSQL has no current schema; does the schema named in its search_path exist?',
    ])
  }
  return schema
}
