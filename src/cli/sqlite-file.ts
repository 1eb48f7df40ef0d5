// What `tessera backup` and `tessera restore` share: the SQLite file DATABASE_URL names (they refuse
// PostgreSQL, which has its own tools), the check that a file is Tessera's, and a rename that survives a
// power cut.
import { closeSync, existsSync, fsyncSync, openSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import { isPostgresUrl, loadConfig } from '../config/load-config.ts'
import { sqliteFilePath } from '../db/serving-lock.ts'
import { CliError, type Env } from './command.ts'

/** The absolute path of the SQLite database; a CliError for PostgreSQL (naming `pgTool`) or :memory:. */
export function sqliteDatabase(
  env: Env,
  pgTool: 'pg_dump' | 'pg_restore',
): { path: string; busyTimeoutMs: number } {
  const { database } = loadConfig(env)
  if (isPostgresUrl(database.url)) {
    throw new CliError(
      `DATABASE_URL is a PostgreSQL database: use ${pgTool}, as docs/operations.md ("Backups") shows`,
    )
  }
  const path = sqliteFilePath(database.url)
  if (path === undefined) throw new CliError('DATABASE_URL is :memory:, which has no file to copy or replace')
  return { path: canonical(path), busyTimeoutMs: database.busyTimeoutMs }
}

/**
 * The path with every symbolic link in its folders resolved (the file itself too, if it is one), so that two
 * names of one file compare equal: /var/lib/tessera is a link to /var/lib/private/tessera under systemd.
 */
export function canonical(path: string): string {
  const absolute = resolve(path)
  if (existsSync(absolute)) return realpathSync(absolute)
  const folder = dirname(absolute)
  return existsSync(folder) ? join(realpathSync(folder), basename(absolute)) : absolute
}

// The files SQLite and the serving lock keep beside a database.
const COMPANIONS = ['', '-wal', '-shm', '-journal', '-lock']

/**
 * `path` names the database or one of its companion files, by any name: writing there would corrupt the live
 * database or break the lock that keeps restores from it.
 */
export function isDatabaseFile(path: string, database: string): boolean {
  const target = canonical(path)
  if (COMPANIONS.some((suffix) => target === `${database}${suffix}`)) return true
  if (!existsSync(target)) return false
  // Another name of the same file: a hard link.
  const { dev, ino } = statSync(target)
  return COMPANIONS.some((suffix) => {
    const companion = `${database}${suffix}`
    if (!existsSync(companion)) return false
    const other = statSync(companion)
    return other.dev === dev && other.ino === ino
  })
}

/**
 * The last migration applied to `db`, which must be a Tessera database: Kysely's migrations table is how one
 * is told apart from any other SQLite file. `name` says which file, in the error.
 */
export function lastMigration(db: DatabaseSync, name: string): string {
  let row: { name?: unknown } | undefined
  try {
    row = db.prepare('SELECT max(name) AS name FROM kysely_migration').get() as typeof row
  } catch (error) {
    const message = (error as Error).message
    if (/no such table/.test(message)) throw new CliError(`${name} is not a Tessera database (no migrations)`)
    if (/not a database|malformed/.test(message)) throw new CliError(`${name} is not an SQLite database`)
    throw error
  }
  if (typeof row?.name !== 'string')
    throw new CliError(`${name} is a Tessera database that was never migrated`)
  return row.name
}

/** Flushes a file, or a folder's list of names (after a rename), to the disk. */
export function syncToDisk(path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** File-system and SQLite failures (a missing folder, a full disk, a permission) as one line, not a stack. */
export function asCliError(error: unknown): unknown {
  if (error instanceof CliError || !(error instanceof Error)) return error
  const { code } = error as { code?: unknown }
  return typeof code === 'string' ? new CliError(error.message.split('\n')[0] ?? code) : error
}
