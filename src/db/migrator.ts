// Applies the migrations of migration-list.ts, in order, at start and from `tessera migrate` (the replacement for
// the seed's `db.create_all()`), and rolls the last one back (`tessera migrate --down`), refusing to lose data
// unless forced. A database a newer release migrated is left as it is: this release starts on it (expand/contract).
import { type Kysely, sql } from 'kysely'
import { type Migration, Migrator } from 'kysely/migration'
import { isPostgresUrl } from '../config/load-config.ts'
import type { Logger } from '../lib/logger.ts'
import { createDb, type DatabaseConfig } from './create-db.ts'
import type { Db } from './database.ts'
import { type DownDrops, MIGRATIONS, type TesseraMigration } from './migration-list.ts'
import { migrationTableSchema, pendingMigrations, readMigrationStatus } from './migration-status.ts'

/** A migration that cannot be run as asked; its message is the one line an operator reads. */
export class MigrationError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MigrationError'
  }
}

/** `applied`: what this run applied. `newer`: migrations of a newer release found applied (none were run then). */
export type MigrationOutcome = { applied: string[]; newer: string[] }

/** What a rollback deletes: the rows of a table, or a column's values that are not its default. */
export type Loss = { table: string; column?: string; rows: number }

/**
 * Migrates the database of `config`, warning on `log` when a newer release has migrated it. On a connection of
 * its own without a statement timeout: a migration may take longer than any request should, and so may waiting
 * for another instance's migration (the lock). SQLite has no such timeout and takes the app's own connection.
 */
export async function migrateDatabase(
  config: DatabaseConfig,
  db: Db,
  log?: Pick<Logger, 'warn'>,
): Promise<MigrationOutcome> {
  const outcome = await withMigrationConnection(config, db, migrateToLatest)
  if (outcome.newer.length > 0) {
    log?.warn(
      { newer: outcome.newer },
      `the database has migrations this release does not know, applied by a newer release (${outcome.newer.join(', ')}): starting without migrating`,
    )
  }
  return outcome
}

export async function migrateToLatest<T>(db: Kysely<T>): Promise<MigrationOutcome> {
  // Kysely refuses a database with a migration it was not given ("corrupted migrations"). During a rolling
  // upgrade that is the previous release restarting after the new one migrated: it must start, and can, since a
  // release's migrations only add what the one before ignores. Pending migrations of its own on top are another
  // story: the two releases' schemas have diverged, and neither can say which is right.
  const status = await readMigrationStatus(db)
  const newer = status.newer.map((m) => m.name)
  if (newer.length > 0) {
    const pending = pendingMigrations(status)
    if (pending.length > 0) {
      throw new MigrationError(
        `the database has migrations this release does not know (${newer.join(', ')}) but not this release's ${pending.join(', ')}: run a release that has them all`,
      )
    }
    return { applied: [], newer }
  }
  // Nothing to do: no lock to take, and no window in which a newer release's migration could surprise Kysely.
  if (pendingMigrations(status).length === 0) return { applied: [], newer: [] }
  const result = await (await createMigrator(db, MIGRATIONS)).migrateToLatest()
  if (result.error) throw asMigrationError(result.error)
  const applied = (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
  return { applied, newer: [] }
}

/**
 * Runs the `down` of the last migration applied. Unless `force`, first counts what it would delete (its
 * `dropsOnDown`) and refuses if that is anything, in the same transaction on PostgreSQL.
 */
export async function rollBackLast(
  config: DatabaseConfig,
  db: Db,
  { force }: { force: boolean },
): Promise<{ name: string; lost: Loss[] }> {
  return withMigrationConnection(config, db, async (conn) => {
    const status = await readMigrationStatus(conn)
    if (status.newer.length > 0) {
      throw new MigrationError(
        `the database has migrations this release does not know (${status.newer.map((m) => m.name).join(', ')}): roll them back with the release that has them`,
      )
    }
    if (!status.known.some((m) => m.appliedAt)) throw new MigrationError('no migration has been applied')
    let lost: Loss[] = []
    const guarded = Object.fromEntries(
      Object.entries(MIGRATIONS).map(([name, migration]): [string, Migration] => [
        name,
        {
          up: migration.up,
          down: async (trx) => {
            lost = await countLosses(trx, migration.dropsOnDown)
            if (lost.length > 0 && !force) {
              throw new MigrationError(
                `rolling back ${name} would delete ${lost.map(describeLoss).join(', ')}; back the database up, then run tessera migrate --down --force`,
              )
            }
            await migration.down(trx)
          },
        },
      ]),
    )
    const result = await (await createMigrator(conn, guarded)).migrateDown()
    if (result.error) throw asMigrationError(result.error)
    const name = result.results?.[0]?.migrationName
    if (!name) throw new MigrationError('no migration was rolled back')
    return { name, lost }
  })
}

/**
 * Kysely's refusals of a database whose migrations disagree with ours (one applied meanwhile by a newer
 * release, say) are an operator's to read in one line, like ours; any other error keeps its stack.
 */
function asMigrationError(error: unknown): unknown {
  if (error instanceof Error && error.message.startsWith('corrupted migrations:')) {
    return new MigrationError(error.message)
  }
  return error
}

export function describeLoss({ table, column, rows }: Loss): string {
  if (column === undefined) return `${rows} ${rows === 1 ? 'row' : 'rows'} of ${table}`
  return `${rows} ${rows === 1 ? 'value' : 'values'} of ${table}.${column}`
}

// biome-ignore lint/suspicious/noExplicitAny: the tables counted are those of the migration's day.
async function countLosses(db: Kysely<any>, drops: DownDrops): Promise<Loss[]> {
  const losses: Loss[] = []
  for (const table of drops.tables) {
    const { rows } = await sql<{ n: string | number }>`select count(*) as n from ${sql.table(table)}`.execute(
      db,
    )
    losses.push({ table, rows: Number(rows[0]?.n ?? 0) })
  }
  for (const { table, column, default: unset } of drops.columns) {
    const ref = sql.ref(column)
    const set = unset === null ? sql`${ref} is not null` : sql`${ref} is not null and ${ref} <> ${unset}`
    const { rows } = await sql<{
      n: string | number
    }>`select count(*) as n from ${sql.table(table)} where ${set}`.execute(db)
    losses.push({ table, column, rows: Number(rows[0]?.n ?? 0) })
  }
  return losses.filter((loss) => loss.rows > 0)
}

async function createMigrator<T>(
  db: Kysely<T>,
  migrations: Readonly<Record<string, Migration | TesseraMigration>>,
) {
  const schema = await migrationTableSchema(db)
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...migrations }) },
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  })
}

async function withMigrationConnection<R>(
  config: DatabaseConfig,
  db: Db,
  use: (db: Db) => Promise<R>,
): Promise<R> {
  if (!isPostgresUrl(config.url)) return use(db)
  const unbounded = createDb({ ...config, statementTimeoutMs: 0, poolSize: 1 })
  try {
    return await use(unbounded)
  } finally {
    await unbounded.destroy()
  }
}
