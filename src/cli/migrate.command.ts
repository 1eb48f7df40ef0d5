// `tessera migrate`: applies pending migrations and says which ran; `--status` lists them; `--down` rolls the last
// one back. Not through createDeps, which migrates silently on its way to building services this does not need.
import { resolve } from 'node:path'
import { loadConfig } from '../config/load-config.ts'
import { createDb } from '../db/create-db.ts'
import { type MigrationStatus, pendingMigrations, readMigrationStatus } from '../db/migration-status.ts'
import { describeLoss, migrateDatabase, rollBackLast } from '../db/migrator.ts'
import { DatabaseInUseError, sqliteFilePath, withoutServers } from '../db/serving-lock.ts'
import { CliError, type Command, parseCommandArgs, UsageError, writeLine } from './command.ts'

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Apply pending database migrations; list them (--status); roll the last back (--down)',
  help: `Usage: tessera migrate [--status | --down [--force]]

Applies the database migrations that have not run yet on DATABASE_URL, in order, and lists them.
Safe to run again: with nothing pending it says the database is up to date. (serve applies pending
migrations at start too; this command is for doing it ahead of a deployment.) A database that a newer
release has migrated is left as it is.

Options:
  --status   List every migration, applied (with its time) or pending, and those applied by a newer
             release that this one does not know. Changes nothing.
  --down     Roll back the last migration applied. Refused when that would delete data (rows of the
             tables it drops, values of the columns it drops): the refusal says what. Stop this
             release's servers first (on SQLite it is refused while one runs).
  --force    With --down: roll back even so, deleting that data.
`,
  async run(args, io) {
    const { values } = parseCommandArgs(this.name, args, {
      status: { type: 'boolean' },
      down: { type: 'boolean' },
      force: { type: 'boolean' },
    })
    if (values.status && (values.down || values.force)) {
      throw new UsageError('--status changes nothing: it takes no --down or --force', this.name)
    }
    if (values.force && !values.down) throw new UsageError('--force goes with --down', this.name)
    const { database } = loadConfig(io.env)
    const db = createDb(database)
    try {
      if (values.status) {
        for (const line of statusLines(await readMigrationStatus(db))) writeLine(io.stdout, line)
      } else if (values.down) {
        const { name, lost } = await withoutSqliteServers(database.url, () =>
          rollBackLast(database, db, { force: values.force === true }),
        )
        const deleted = lost.length > 0 ? `, deleting ${lost.map(describeLoss).join(', ')}` : ''
        writeLine(io.stdout, `Rolled back ${name}${deleted}.`)
      } else {
        const { applied, newer } = await migrateDatabase(database, db)
        if (newer.length > 0) writeLine(io.stdout, aheadLine(newer))
        else if (applied.length === 0) writeLine(io.stdout, 'The database is already up to date.')
        for (const name of applied) writeLine(io.stdout, `Applied ${name}`)
      }
    } finally {
      await db.destroy()
    }
    return 0
  },
}

/**
 * A rollback drops what the servers of this release use: on SQLite it is refused while one runs, as a
 * restore is (db/serving-lock.ts). PostgreSQL's servers cannot be seen from here: docs/operations.md says to
 * stop this release's first.
 */
async function withoutSqliteServers<T>(url: string, use: () => Promise<T>): Promise<T> {
  const path = sqliteFilePath(url)
  if (path === undefined) return use()
  return withoutServers(resolve(path), use).catch((error: unknown) => {
    throw error instanceof DatabaseInUseError ? new CliError(error.message) : error
  })
}

const aheadLine = (newer: string[]) =>
  `The database has migrations this release does not know, applied by a newer release: ${newer.join(', ')}.`

function statusLines(status: MigrationStatus): string[] {
  const rows = [
    ...status.known.map((m) => [m.name, m.appliedAt ? `applied ${m.appliedAt.toISOString()}` : 'pending']),
    ...status.newer.map((m) => [m.name, `applied ${m.appliedAt.toISOString()}, unknown to this release`]),
  ]
  const width = Math.max(...rows.map(([name]) => name?.length ?? 0)) + 2
  const lines = rows.map(([name, state]) => `${name?.padEnd(width)}${state}`)
  const pending = pendingMigrations(status)
  const newer = status.newer.map((m) => m.name)
  if (newer.length > 0) {
    lines.push(aheadLine(newer))
    lines.push(
      pending.length > 0
        ? 'This release also has pending migrations: it cannot run on this database.'
        : 'This release runs on it without migrating (a release only adds what the one before ignores).',
    )
  } else if (pending.length > 0) {
    lines.push(
      `${pending.length} pending: "tessera migrate" applies them (so does "tessera serve", at start).`,
    )
  } else {
    lines.push('The database is up to date.')
  }
  return lines
}
