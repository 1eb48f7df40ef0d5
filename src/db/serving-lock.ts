// Whether a Tessera server is using an SQLite database, for `tessera restore`, which must not replace a
// database under a running server. Every serving process (a single server, each worker, a cluster's primary)
// holds a shared lock on `<database>-lock` for as long as it lives; restore takes that lock exclusively.
//
// An operating-system lock rather than a file naming a pid: the kernel drops it when the process ends, however
// it ends (kill -9 included), so there is nothing stale to clean up or misread, and it is seen from another
// PID namespace (a restore run in another container on the same volume), where a pid would be dead or someone
// else's. Node has no flock, so SQLite takes the lock: a read transaction on an (empty) database in
// rollback-journal mode holds a POSIX SHARED lock until it ends, and BEGIN EXCLUSIVE fails while any is held.
// The lock is on a file of its own, never replaced, not on the database, whose file restore swaps.
import { closeSync, mkdirSync, openSync, readSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { isPostgresUrl } from '../config/load-config.ts'
import { type DatabaseConfig, sqlitePath } from './create-db.ts'
import { DatabaseFileError, DatabaseUnavailableError } from './database-errors.ts'

const SQLITE_BUSY = 5

/** The SQLite file DATABASE_URL names (as create-db.ts reads it), or undefined for PostgreSQL and :memory:. */
export function sqliteFilePath(url: string): string | undefined {
  if (isPostgresUrl(url)) return undefined
  const path = sqlitePath(url)
  return path === ':memory:' ? undefined : path
}

export const servingLockPath = (databasePath: string) => `${databasePath}-lock`

export type ServingLock = { release(): void }

// The connections holding a lock, kept from the garbage collector (which would close them, and so let go of
// the lock) for as long as the process lives or until released.
const held = new Set<DatabaseSync>()

/**
 * Taken by a server before it opens the database, held until it exits. While a restore runs, waits up to
 * DATABASE_BUSY_TIMEOUT_MS for it, then fails in one line. Nothing to hold for PostgreSQL or :memory:.
 */
export function holdServingLock(config: DatabaseConfig): ServingLock {
  const path = sqliteFilePath(config.url)
  if (path === undefined) return { release() {} }
  // A file that is not SQLite (an .env file named by mistake) gets no lock file beside it: the start fails
  // on it below, as it would on opening the database.
  if (!isSqliteOrEmpty(path)) throw new DatabaseFileError(path, new Error('file is not a database'))
  let lock: DatabaseSync
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    lock = new DatabaseSync(servingLockPath(path), { timeout: config.busyTimeoutMs })
  } catch (error) {
    // The database's folder cannot be made or written (a path under a file, no permission): the database
    // could not be opened either, and is what the operator named.
    throw new DatabaseFileError(path, error)
  }
  try {
    lock.exec('BEGIN')
    lock.prepare('SELECT count(*) FROM sqlite_master').get()
  } catch (error) {
    lock.close()
    if (!isBusy(error)) throw new DatabaseFileError(path, error)
    throw new DatabaseUnavailableError(
      new Error(`tessera restore is replacing ${path}; start the server once it has finished`),
    )
  }
  held.add(lock)
  return {
    release() {
      held.delete(lock)
      lock.close()
    },
  }
}

/** A server holds the lock: the database must not be replaced. */
export class DatabaseInUseError extends Error {
  constructor(path: string) {
    super(`a Tessera server is using ${path}: stop it (every instance and worker on this file) first`)
    this.name = 'DatabaseInUseError'
  }
}

/**
 * Runs `use` holding the lock exclusively, so that no server runs on `databasePath` meanwhile and none can
 * start until it returns. Throws DatabaseInUseError at once if one is running.
 */
export async function withoutServers<T>(databasePath: string, use: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(databasePath), { recursive: true, mode: 0o700 })
  const lock = new DatabaseSync(servingLockPath(databasePath), { timeout: 0 })
  try {
    try {
      lock.exec('BEGIN EXCLUSIVE')
    } catch (error) {
      if (isBusy(error)) throw new DatabaseInUseError(databasePath)
      throw error
    }
    return await use()
  } finally {
    lock.close()
  }
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0')

/** The file is missing, empty (SQLite makes it a database), or begins with SQLite's header. */
function isSqliteOrEmpty(path: string): boolean {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return true // missing, or not readable: opening the database says which
  }
  try {
    const header = Buffer.alloc(SQLITE_HEADER.length)
    const read = readSync(fd, header, 0, header.length, 0)
    return read === 0 || header.equals(SQLITE_HEADER)
  } catch {
    return true // a directory, say: opening the database says so
  } finally {
    closeSync(fd)
  }
}

function isBusy(error: unknown): boolean {
  const { errcode } = (error ?? {}) as { errcode?: unknown }
  return typeof errcode === 'number' && (errcode & 0xff) === SQLITE_BUSY
}
