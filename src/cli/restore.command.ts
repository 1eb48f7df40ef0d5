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
import { DatabaseInUseError, withoutServers } from '../db/serving-lock.ts'
import { CliError, type Command, parseCommandArgs, writeLine } from './command.ts'
import { asCliError, lastMigration, sqliteDatabase, syncToDisk } from './sqlite-file.ts'

// A -wal or -journal left beside the database belongs to the one being replaced: SQLite would replay its
// pages into the restored file and corrupt it. The -shm indexes that -wal.
const SIDECARS = ['-wal', '-shm', '-journal']

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'Replace the SQLite database with a backup (servers stopped)',
  help: `Usage: tessera restore <file>

Replaces the SQLite database DATABASE_URL with <file>, a backup made by "tessera backup". Everything
written to the database since that backup is lost (back it up first to keep it).

Stop every server on the database first: the command refuses while one runs, and a server started while it
works waits for it (up to DATABASE_BUSY_TIMEOUT_MS). <file> is checked (an intact SQLite database with
Tessera's migrations) before the database is touched; the database's -wal and -shm files are removed with
it. The restored file keeps the owner of the one it replaces. Nothing is migrated: the next start applies
the migrations the backup lacks.

On PostgreSQL, use pg_restore: see docs/operations.md, "Backups".
`,
  async run(args, io) {
    const { positionals } = parseCommandArgs(this.name, args, {}, ['file'])
    const database = sqliteDatabase(io.env, 'pg_restore')
    const backup = resolve(positionals[0] as string)
    if (backup === database.path) throw new CliError(`${backup} is the database itself`)
    if (!existsSync(backup)) throw new CliError(`there is no file ${backup}`)

    const migration = await withoutServers(database.path, async () => {
      // Checked on a copy beside the database, which is what is then renamed into place (atomically): the
      // backup itself is only read, and a failure at any point leaves the database as it was.
      const staged = `${database.path}.restore-${randomUUID().slice(0, 8)}`
      try {
        copyFileSync(backup, staged, constants.COPYFILE_EXCL)
        chmodSync(staged, 0o600)
        const checked = check(staged, backup)
        keepOwner(database.path, staged)
        syncToDisk(staged)
        for (const suffix of SIDECARS) rmSync(`${database.path}${suffix}`, { force: true })
        renameSync(staged, database.path)
        syncToDisk(dirname(database.path))
        return checked
      } catch (error) {
        for (const suffix of ['', ...SIDECARS]) rmSync(`${staged}${suffix}`, { force: true })
        throw asCliError(error)
      }
    }).catch((error: unknown) => {
      throw error instanceof DatabaseInUseError ? new CliError(error.message) : error
    })
    writeLine(
      io.stdout,
      `Restored ${database.path} from ${backup} (at migration ${migration}); the next start applies any later migrations`,
    )
    return 0
  },
}

/** `staged` is an intact Tessera database: its last migration. `backup` names it in errors. */
function check(staged: string, backup: string): string {
  const db = new DatabaseSync(staged)
  try {
    const migration = lastMigration(db, backup)
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
