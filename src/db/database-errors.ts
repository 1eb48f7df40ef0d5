// Database errors the app answers in its own way: "the database cannot be reached or is overloaded right now"
// (503, retry later) apart from every other database error (a bug: 500), and a unique-key violation (a name
// already taken). The pool wraps failures to connect; the rest are recognized by the codes PostgreSQL,
// node's sockets, pg and SQLite give them.

export class DatabaseUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`The database is not reachable: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    })
    this.name = 'DatabaseUnavailableError'
  }
}

const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
])

// SQLSTATE: 08 connection exception (but 08P01, a protocol violation, is a bug), 57P01-03 shutdown /
// cannot connect now, 53300 too many connections, 57014 query canceled (statement_timeout).
const SQLSTATES = /^(08(?!P01)...|57P0[123]|53300|57014)$/

// pg's own errors carry no code: a connection lost mid-query, or query_timeout.
const PG_MESSAGES = /^(Connection terminated|Query read timeout|Client has encountered a connection error)/

const SQLITE_BUSY = 5

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error instanceof DatabaseUnavailableError) return true
  const { code, errcode } = error as { code?: unknown; errcode?: unknown }
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || SQLSTATES.test(code))) return true
  // node:sqlite: the lock was still held when DATABASE_BUSY_TIMEOUT_MS ran out.
  if (typeof errcode === 'number' && (errcode & 0xff) === SQLITE_BUSY) return true
  return PG_MESSAGES.test(error.message)
}

/** A unique index refused the write (a username or key id that is already taken). */
export function isUniqueViolation(error: unknown): boolean {
  const { code, errcode, message } = error as { code?: string; errcode?: number; message?: string }
  // node:sqlite: errcode 2067 (SQLITE_CONSTRAINT_UNIQUE); PostgreSQL: SQLSTATE 23505.
  return errcode === 2067 || code === '23505' || /UNIQUE constraint failed/.test(message ?? '')
}

/** The SQLite file cannot be opened as a database: a path that is a directory, not writable, or not SQLite. */
export class DatabaseFileError extends Error {
  constructor(path: string, cause: unknown) {
    super(
      `Cannot open the SQLite database ${path} (DATABASE_URL): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    )
    this.name = 'DatabaseFileError'
  }
}
