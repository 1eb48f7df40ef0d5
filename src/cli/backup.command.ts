// `tessera backup <file>`: a consistent copy of the SQLite database, made while servers go on serving.
//
// VACUUM INTO rather than node:sqlite's backup() (the online backup API): VACUUM INTO copies one snapshot in
// one read transaction, which in WAL mode holds up no writer, while the backup API copies a few pages at a
// time and starts over whenever another process writes in between, so a busy server can keep it from ever
// finishing. Its copy is also compacted and in rollback-journal mode: one file, with no -wal to carry along.
import {
  closeSync,
  existsSync,
  linkSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { CliError, type Command, parseCommandArgs, writeLine } from './command.ts'
import { asCliError, isDatabaseFile, lastMigration, sqliteDatabase, syncToDisk } from './sqlite-file.ts'

export const backupCommand: Command = {
  name: 'backup',
  summary: 'Copy the SQLite database to a file, while servers run',
  help: `Usage: tessera backup <file> [--force]

Writes a consistent copy of the SQLite database DATABASE_URL to <file>, while servers go on serving.
The copy is one SQLite file, readable by its owner only, that "tessera restore" puts back. It holds password hashes, sessions and signing keys: keep it as safe as the
database. It is not enough alone: keys sealed with KEY_ENCRYPTION_SECRET, and tokens signed with JWT_SECRET,
need those secrets, which are not in it; keep them apart from the backups.

Options:
  --force   replace <file> if it exists (without it, an existing <file> is refused)

On PostgreSQL, use pg_dump: see docs/operations.md, "Backups".
`,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(this.name, args, { force: { type: 'boolean' } }, [
      'file',
    ])
    const database = sqliteDatabase(io.env, 'pg_dump')
    const target = resolve(positionals[0] as string)
    if (isDatabaseFile(target, database.path)) {
      throw new CliError(`${target} is the database, or a file SQLite or the servers keep beside it`)
    }
    if (!values.force && existsSync(target))
      throw new CliError(`${target} exists: pass --force to replace it`)
    // Never create the database by copying it: a mistyped DATABASE_URL would back up an empty file.
    if (!existsSync(database.path))
      throw new CliError(`there is no database at ${database.path} (DATABASE_URL)`)

    // Written in a folder of its own beside the target, then renamed: an interrupted backup leaves no file
    // that looks finished, and in a folder others can write to (mkdtemp makes it 0700) nobody can swap or
    // open the copy while VACUUM INTO writes it by name. Created owner-only (VACUUM INTO keeps an empty
    // file's mode): it holds password hashes.
    let workspace: string
    try {
      workspace = mkdtempSync(join(dirname(target), '.tessera-backup-'))
    } catch (error) {
      throw new CliError(`cannot write in ${dirname(target)}: ${(error as Error).message.split(',')[0]}`)
    }
    const partial = join(workspace, basename(target))
    let migration: string
    try {
      closeSync(openSync(partial, 'wx', 0o600))
      // Opened read-write though only read: a read-only connection cannot remove the -wal and -shm it may
      // create, which would be left owned by whoever ran this (root, say), and the server could not open them.
      const db = new DatabaseSync(database.path, { timeout: database.busyTimeoutMs })
      try {
        migration = lastMigration(db, database.path)
        db.prepare('VACUUM INTO ?').run(partial)
      } finally {
        db.close()
      }
      syncToDisk(partial)
      // The copy is read back before it is called a backup.
      const copy = new DatabaseSync(partial, { readOnly: true })
      try {
        if (lastMigration(copy, partial) !== migration)
          throw new CliError(`the copy ${partial} is not complete`)
      } finally {
        copy.close()
      }
      place(partial, target, values.force === true)
    } catch (error) {
      throw asCliError(error)
    } finally {
      rmSync(workspace, { recursive: true, force: true })
    }
    const kib = Math.ceil(statSync(target).size / 1024)
    writeLine(
      io.stdout,
      `Wrote ${target} (${kib} KiB): a backup of ${database.path} at migration ${migration}`,
    )
    return 0
  },
}

/** Moves the finished copy to `target`; without `force`, refuses a target that appeared in the meantime. */
function place(partial: string, target: string, force: boolean): void {
  if (force) {
    renameSync(partial, target)
  } else {
    try {
      // A hard link fails if the name exists, where a rename would replace it.
      linkSync(partial, target)
    } catch (error) {
      if ((error as { code?: string }).code === 'EEXIST') {
        throw new CliError(`${target} exists: pass --force to replace it`)
      }
      throw error
    }
    unlinkSync(partial)
  }
  syncToDisk(dirname(target))
}
