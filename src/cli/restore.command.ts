// `tessera restore <file>`: puts a backup in place of the SQLite database. Refuses while a server runs on it,
// and keeps any from starting meanwhile (db/serving-lock.ts); checks the backup, on a copy, before the
// database is touched; migrates nothing (the next start applies what the backup lacks, as any start does).
import { randomUUID } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  constants,
  copyFileSync,
  existsSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { MIGRATIONS } from '../db/migration-list.ts'
import { DatabaseInUseError, withoutServers } from '../db/serving-lock.ts'
import { CliError, type Command, parseCommandArgs, writeLine } from './command.ts'
import { asCliError, lastMigration, sqliteDatabase, syncToDisk } from './sqlite-file.ts'

// A -wal or -journal left beside the database belongs to the one being replaced: SQLite would replay its
// pages into the restored file and corrupt it. The -shm indexes that -wal.
const SIDECARS = ['-wal', '-shm', '-journal']

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'Replace the SQLite database with a backup (servers stopped)',
  help: `Usage: tessera restore <file> [--create]

Replaces the SQLite database DATABASE_URL with <file>, a backup made by "tessera backup". Everything
written to the database since that backup is gone from it; the replaced database is kept beside it, as
<database>.replaced-<time> with its -wal, until you delete it.

Stop every server on the database first: the command refuses while one runs, and a server started while it
works waits for it (up to DATABASE_BUSY_TIMEOUT_MS). <file> is checked (an intact SQLite database with
Tessera's migrations, none newer than this release's) before the database is touched. The restored file
keeps the owner of the one it replaces. Nothing is migrated: the next start applies the migrations the
backup lacks.

Options:
  --create   restore to a DATABASE_URL where no database is yet (a restore drill, a new machine). Without
             it, a missing database is refused: DATABASE_URL is probably not the server's.

On PostgreSQL, use pg_restore: see docs/operations.md, "Backups".
`,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(this.name, args, { create: { type: 'boolean' } }, [
      'file',
    ])
    const database = sqliteDatabase(io.env, 'pg_restore')
    const backup = resolve(positionals[0] as string)
    if (backup === database.path) throw new CliError(`${backup} is the database itself`)
    if (!existsSync(backup)) throw new CliError(`there is no file ${backup}`)
    // A DATABASE_URL missing from the shell (the default ./data/tessera.db) or mistyped would otherwise
    // "restore" a database no server reads, and report success.
    if (!values.create && !existsSync(database.path)) {
      throw new CliError(
        `there is no database at ${database.path} (DATABASE_URL): set DATABASE_URL to the server's, or pass --create to restore into a new file`,
      )
    }

    const { migration, kept } = await withoutServers(database.path, async () => {
      // Checked on a copy beside the database, which is what is then renamed into place (atomically): the
      // backup itself is only read, and a failure at any point leaves the database as it was.
      const staged = `${database.path}.restore-${randomUUID().slice(0, 8)}`
      try {
        copyFileSync(backup, staged, constants.COPYFILE_EXCL)
        chmodSync(staged, 0o600)
        const checked = check(staged, backup)
        keepOwner(database.path, staged)
        syncToDisk(staged)
        return { migration: checked, kept: replace(database.path, staged) }
      } catch (error) {
        for (const suffix of ['', ...SIDECARS]) rmSync(`${staged}${suffix}`, { force: true })
        throw asCliError(error)
      }
    }).catch((error: unknown) => {
      throw error instanceof DatabaseInUseError ? new CliError(error.message) : error
    })
    writeLine(
      io.stdout,
      `Restored ${database.path} from ${backup} (at migration ${migration}); the next start applies any later migrations` +
        (kept
          ? `. The replaced database is kept as ${kept}: delete it (with its -wal) once you are satisfied`
          : ''),
    )
    return 0
  },
}

/**
 * Puts `staged` in place of `database`. The old file and its sidecars are moved aside first, and kept: a
 * failure on the way puts them back as they were, so a database whose last writes are still in its -wal never
 * loses them to a restore that did not happen; and a restore of the wrong backup can be undone. Returns the
 * name the replaced database is kept under (undefined when there was none), which SQLite opens with its -wal.
 */
function replace(database: string, staged: string): string | undefined {
  const aside = `${database}.replaced-${new Date().toISOString().replaceAll(':', '')}`
  const moved: string[] = []
  try {
    for (const suffix of ['', ...SIDECARS]) {
      if (!existsSync(`${database}${suffix}`)) continue
      renameSync(`${database}${suffix}`, `${aside}${suffix}`)
      moved.push(suffix)
    }
    renameSync(staged, database)
  } catch (error) {
    for (const suffix of moved) renameSync(`${aside}${suffix}`, `${database}${suffix}`)
    throw error
  }
  syncToDisk(dirname(database))
  // Without its -wal the kept file would lose its last writes; without a database file there is nothing kept.
  return moved.includes('') ? aside : undefined
}

/** `staged` is an intact Tessera database: its last migration. `backup` names it in errors. */
function check(staged: string, backup: string): string {
  const db = new DatabaseSync(staged)
  try {
    const migration = lastMigration(db, backup)
    // A newer release's backup: this release would refuse to serve it (or worse, if it is not Tessera's).
    if (!(migration in MIGRATIONS)) {
      throw new CliError(
        `${backup} was made at migration ${migration}, which this release does not know: restore it with the release that made it`,
      )
    }
    const [result] = db.prepare('PRAGMA quick_check').all() as { quick_check: string }[]
    if (result?.quick_check !== 'ok') throw new CliError(`${backup} is damaged: ${result?.quick_check}`)
    return migration
  } finally {
    db.close()
  }
}

/**
 * Gives the restored file the owner of the database it replaces: run as root, a restore would otherwise leave
 * a file that the server's own user cannot open.
 */
function keepOwner(database: string, staged: string): void {
  if (!existsSync(database)) return
  const { uid, gid } = statSync(database)
  const mine = statSync(staged)
  if (mine.uid === uid && mine.gid === gid) return
  try {
    chownSync(staged, uid, gid)
  } catch {
    throw new CliError(
      `cannot give the restored file to the owner of ${database} (uid ${uid}): run as that user`,
    )
  }
}
