// `tessera user import <source>` (also `tessera users import`): users with their password hashes from another
// system, such as the Flask tutorial's database (docs/migrating-from-flask.md). The rows are read as a stream
// and written in batches (auth/user-import.service.ts); this file reads the command line, shows progress on a
// terminal, and prints the report.
import { existsSync } from 'node:fs'
import { type ImportReport, MAX_SKIPS_LISTED, SKIP_REASONS } from '../auth/user-import.service.ts'
import { CLI_CONTEXT } from '../events/event.ts'
import { CliError, type Command, type Io, parseCommandArgs, withDeps, writeLine } from './command.ts'
import {
  createScratchSeen,
  type FieldNames,
  formatOf,
  readSource,
  TUTORIAL_FIELDS,
} from './user-import-sources.ts'

const NAME = 'user import'

const OPTIONS = {
  format: { type: 'string' },
  table: { type: 'string' },
  'id-column': { type: 'string' },
  'username-column': { type: 'string' },
  'password-column': { type: 'string' },
  'first-name-column': { type: 'string' },
  'last-name-column': { type: 'string' },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
} as const

/** Text lines of the report: the skipped rows are listed up to this many (--json lists up to MAX_SKIPS_LISTED). */
const SKIPS_PRINTED = 50

const HELP = `Usage: tessera user import <source> [--format sqlite|csv|jsonl] [--dry-run] [--json]
                           [--table NAME] [--id-column NAME] [--username-column NAME]
                           [--password-column NAME] [--first-name-column NAME] [--last-name-column NAME]

Adds the users of another system with the password hashes it stored, so that they log in with the
passwords they have. bcrypt hashes ($2a$, $2b$, $2y$: Flask-Bcrypt's) and argon2 hashes are kept as they
are; at each user's first login the hash is replaced by an argon2id one. The source's id of each user is
kept as the user's external id (GET /users?externalId=...), and makes a second run skip the users the first
one imported. Imported users get the role "user". "tessera users import" is the same command.

  <source>                 a SQLite database (.db, .sqlite, .sqlite3), a CSV file with a header row
                           (.csv), or JSON Lines, one object per line (.jsonl, .ndjson)
  --format F               the source's format, when its name does not say it
  --table NAME             the SQLite table (default: ${TUTORIAL_FIELDS.table}, as Flask-SQLAlchemy names a User model's)
  --id-column NAME         the old id, kept as the external id (default: ${TUTORIAL_FIELDS.id}; may be absent)
  --username-column NAME   (default: ${TUTORIAL_FIELDS.username})
  --password-column NAME   the stored hash (default: ${TUTORIAL_FIELDS.password})
  --first-name-column NAME (default: ${TUTORIAL_FIELDS.firstName}; the username when absent or empty)
  --last-name-column NAME  (default: ${TUTORIAL_FIELDS.lastName}; the username when absent or empty)
  --dry-run                check every row and report, writing nothing
  --json                   print the report as JSON

The column options name CSV header columns and JSON keys too. A row is skipped, and the report says why,
when ${Object.values(SKIP_REASONS).join('; ')}.
A row whose id a user already has is counted as already imported. Usernames follow USERNAME_PATTERN and
USERNAME_MAX_LENGTH (set them before importing usernames that are email addresses); reserved names are
allowed, as with "tessera user create". One security event (users.imported) records the run.

Examples:
  tessera user import instance/app.db --dry-run
  tessera user import users.csv --id-column user_id --json
`

function fieldsOf(values: Partial<Record<keyof typeof OPTIONS, string | boolean>>): FieldNames {
  const name = (option: keyof typeof OPTIONS, fallback: string) => {
    const value = values[option]
    return typeof value === 'string' && value !== '' ? value : fallback
  }
  return {
    table: name('table', TUTORIAL_FIELDS.table),
    id: name('id-column', TUTORIAL_FIELDS.id),
    username: name('username-column', TUTORIAL_FIELDS.username),
    password: name('password-column', TUTORIAL_FIELDS.password),
    firstName: name('first-name-column', TUTORIAL_FIELDS.firstName),
    lastName: name('last-name-column', TUTORIAL_FIELDS.lastName),
  }
}

/** A progress line on stderr, redrawn at most twice a second; only on a terminal. */
function progressLine(io: Io) {
  const stderr = io.stderr as NodeJS.WriteStream
  if (!stderr.isTTY) return { update: () => {}, end: () => {} }
  const started = performance.now()
  let last = 0
  return {
    update(report: ImportReport) {
      const now = performance.now()
      if (now - last < 500) return
      last = now
      const rate = Math.round(report.read / ((now - started) / 1000))
      stderr.write(
        `\r${report.read} rows read: ${report.imported} imported, ${report.alreadyImported} already, ${report.skipped} skipped (${rate} rows/s) `,
      )
    },
    end: () => stderr.write('\n'),
  }
}

function printReport(report: ImportReport, source: string, io: Io): void {
  const verb = report.dryRun ? 'Would import' : 'Imported'
  writeLine(io.stdout, `${verb} ${report.imported} users from ${source} (${report.read} rows read).`)
  writeLine(io.stdout, `Already imported (their id is an external id already): ${report.alreadyImported}`)
  writeLine(io.stdout, `Skipped: ${report.skipped}`)
  for (const [reason, count] of Object.entries(report.skippedByReason)) {
    writeLine(io.stdout, `  ${reason}: ${count}`)
  }
  for (const skip of report.skips.slice(0, SKIPS_PRINTED)) {
    const who = [
      skip.externalId === null ? '' : `id ${printable(skip.externalId)}`,
      printable(skip.username ?? ''),
    ]
      .filter((part) => part !== '')
      .join(', ')
    writeLine(io.stdout, `  line ${skip.line}${who ? ` (${who})` : ''}: ${skip.reason}: ${skip.detail}`)
  }
  if (report.skipped > SKIPS_PRINTED) {
    writeLine(
      io.stdout,
      `  ... and ${report.skipped - SKIPS_PRINTED} more (--json lists the first ${MAX_SKIPS_LISTED})`,
    )
  }
  if (report.dryRun) writeLine(io.stdout, 'Dry run: nothing was written.')
}

export const userImportCommand: Command = {
  name: NAME,
  summary: 'Import users and their password hashes (Flask SQLite, CSV, JSON Lines)',
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(NAME, args, OPTIONS, ['source'])
    const source = positionals[0] ?? ''
    const format = formatOf(source, values.format)
    if (!existsSync(source)) throw new CliError(`No file "${source}"`)
    const fields = fieldsOf(values)
    return withDeps(io.env, async ({ services }) => {
      const seen = createScratchSeen()
      const progress = progressLine(io)
      try {
        const report = await services.userImport.run(readSource(source, format, fields), {
          dryRun: values['dry-run'] ?? false,
          seen,
          source: format,
          context: CLI_CONTEXT,
          onProgress: progress.update,
        })
        progress.end()
        if (values.json) writeLine(io.stdout, JSON.stringify({ source, format, ...report }))
        else printReport(report, source, io)
        return 0
      } finally {
        seen.close()
      }
    })
  },
}

/** The same command under the plural the issue names it by. */
export const usersImportCommand: Command = {
  ...userImportCommand,
  name: 'users import',
  summary: 'Same as "user import"',
}

/**
 * A value from the source, as the text report prints it: control and invisible characters escaped (`\u001b`),
 * so that a row cannot clear the terminal or forge a line of the report. The --json report escapes them itself.
 */
function printable(value: string): string {
  return value.replace(
    /[\p{C}\p{Zl}\p{Zp}]/gu,
    (char) => `\\u${char.codePointAt(0)?.toString(16).padStart(4, '0')}`,
  )
}
