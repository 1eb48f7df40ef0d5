// What `tessera user import` reads, as a stream of rows: a SQLite database (the Flask tutorial's, by default its
// `user` table), CSV with a header row (csv-parse), or JSON Lines (node:readline). Each is read a row at a time,
// never whole. Also the scratch store in which a run remembers the names and ids it has seen.
import { createReadStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { extname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { DatabaseSync } from 'node:sqlite'
import { parse } from 'csv-parse'
import type { ImportRow, SeenInSource } from '../auth/user-import.service.ts'
import { CliError } from './command.ts'

export const SOURCE_FORMATS = ['sqlite', 'csv', 'jsonl'] as const
export type SourceFormat = (typeof SOURCE_FORMATS)[number]

/** Where each field is: a column of the table, a column of the CSV header, a key of each JSON object. */
export type FieldNames = {
  table: string
  id: string
  username: string
  password: string
  firstName: string
  lastName: string
}

/** The Flask tutorial's model: Flask-SQLAlchemy names its `User` class's table `user`. */
export const TUTORIAL_FIELDS: FieldNames = {
  table: 'user',
  id: 'id',
  username: 'username',
  password: 'password',
  firstName: 'firstName',
  lastName: 'lastName',
}

export function formatOf(path: string, given: string | undefined): SourceFormat {
  if (given !== undefined) {
    if ((SOURCE_FORMATS as readonly string[]).includes(given)) return given as SourceFormat
    throw new CliError(`--format must be one of ${SOURCE_FORMATS.join(', ')}`, 2)
  }
  const extension = extname(path).toLowerCase()
  if (['.db', '.sqlite', '.sqlite3'].includes(extension)) return 'sqlite'
  if (extension === '.csv') return 'csv'
  if (['.jsonl', '.ndjson'].includes(extension)) return 'jsonl'
  throw new CliError(
    `Cannot tell the format of "${path}" from its name: add --format sqlite, csv or jsonl`,
    2,
  )
}

/** A field's value as text: numbers (an integer id), and hashes a Python app stored as bytes, become text. */
function text(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8')
  if (typeof value === 'object') return undefined
  return String(value)
}

function rowOf(line: number, record: Record<string, unknown>, fields: FieldNames): ImportRow {
  return {
    line,
    externalId: text(record[fields.id]),
    username: text(record[fields.username]),
    passwordHash: text(record[fields.password]),
    firstName: text(record[fields.firstName]),
    lastName: text(record[fields.lastName]),
  }
}

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`

async function* sqliteRows(path: string, fields: FieldNames): AsyncGenerator<ImportRow> {
  let source: DatabaseSync
  try {
    source = new DatabaseSync(path, { readOnly: true })
  } catch (error) {
    throw new CliError(`Cannot open "${path}" as a SQLite database: ${(error as Error).message}`)
  }
  try {
    const columns = new Set(
      source
        .prepare(`select name from pragma_table_info(?)`)
        .all(fields.table)
        .map((column) => String(column.name)),
    )
    if (columns.size === 0) throw new CliError(`"${path}" has no table "${fields.table}" (--table)`)
    const wanted = [fields.id, fields.username, fields.password, fields.firstName, fields.lastName]
    // The id and names may be absent; the username and the password may not.
    for (const required of [fields.username, fields.password]) {
      if (!columns.has(required)) throw new CliError(`Table "${fields.table}" has no column "${required}"`)
    }
    const select = wanted.filter((name) => columns.has(name)).map(quoted)
    // In rowid order: the order the rows were inserted in, as the report's row numbers count them.
    const statement = source.prepare(`select ${select.join(', ')} from ${quoted(fields.table)}`)
    let line = 0
    for (const record of statement.iterate()) yield rowOf(++line, record, fields)
  } finally {
    source.close()
  }
}

async function* csvRows(path: string, fields: FieldNames): AsyncGenerator<ImportRow> {
  const parser = createReadStream(path).pipe(
    parse({ columns: true, bom: true, skip_empty_lines: true, info: true, relax_column_count: true }),
  )
  let checked = false
  for await (const { record, info } of parser as AsyncIterable<{
    record: Record<string, string>
    info: { lines: number }
  }>) {
    if (!checked) {
      for (const required of [fields.username, fields.password]) {
        if (!(required in record)) throw new CliError(`The CSV header has no column "${required}"`)
      }
      checked = true
    }
    yield rowOf(info.lines, record, fields)
  }
}

async function* jsonlRows(path: string, fields: FieldNames): AsyncGenerator<ImportRow> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY })
  let line = 0
  for await (const content of lines) {
    line++
    if (content.trim() === '') continue
    let record: unknown
    try {
      record = JSON.parse(content)
    } catch {
      record = undefined
    }
    // A line that is not an object reads as a row without fields: reported as such, the run goes on.
    const isObject = typeof record === 'object' && record !== null && !Array.isArray(record)
    yield rowOf(line, isObject ? (record as Record<string, unknown>) : {}, fields)
  }
}

export function readSource(path: string, format: SourceFormat, fields: FieldNames): AsyncIterable<ImportRow> {
  if (format === 'sqlite') return sqliteRows(path, fields)
  return format === 'csv' ? csvRows(path, fields) : jsonlRows(path, fields)
}

/**
 * The names and ids a run has seen, in a SQLite file of its own under the temporary folder (deleted by
 * `close`): a million rows need some tens of megabytes of disk rather than of memory.
 */
export function createScratchSeen(): SeenInSource & { close(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-import-'))
  const scratch = new DatabaseSync(join(dir, 'seen.db'))
  scratch.exec(`pragma journal_mode = off; pragma synchronous = off;
    create table seen (kind integer not null, key text not null, line integer not null, primary key (kind, key))
    without rowid;`)
  const insert = scratch.prepare(
    'insert into seen (kind, key, line) values (?, ?, ?) on conflict do nothing returning line',
  )
  const find = scratch.prepare('select line from seen where kind = ? and key = ?')
  // One transaction for the run: nothing here needs to survive it.
  scratch.exec('begin')
  return {
    claim(kind, key, line) {
      const code = kind === 'username' ? 0 : 1
      if (insert.get(code, key, line) !== undefined) return undefined
      return Number(find.get(code, key)?.line)
    },
    close() {
      scratch.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
