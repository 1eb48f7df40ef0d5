// The one place that picks the database dialect and opens the connection: PostgreSQL for a postgres:// URL,
// SQLite for anything else. Everything above this file sees the same Kysely<Database>.
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely'
import type pgModule from 'pg'
import { type Config, isPostgresUrl } from '../config/load-config.ts'
import type { Database, Db } from './database.ts'
import { DatabaseFileError, DatabaseUnavailableError } from './database-errors.ts'
import { adaptNodeSqlite } from './node-sqlite-adapter.ts'

export type DatabaseConfig = Config['database']

/**
 * How busy a database's connections are, for the metrics: PostgreSQL's pool; SQLite's one connection, in
 * use while a query or transaction holds it, with the queries of this process waiting for it behind.
 */
export type PoolUsage = { inUse: number; idle: number; waiting: number; max: number }

const usages = new WeakMap<Db, () => PoolUsage>()

/** The connections of a database made by createDb, now. */
export function poolUsage(db: Db): PoolUsage | undefined {
  return usages.get(db)?.()
}

/** `url` with PostgreSQL's search_path set to `schema`: how Tessera is pointed at a schema of its own. */
export function withSearchPath(url: string, schema: string): string {
  const options = encodeURIComponent(`-c search_path=${schema}`)
  return `${url}${url.includes('?') ? '&' : '?'}options=${options}`
}

/** `onConnectionError`: a pooled connection broke (the server restarted, the network failed). */
export function createDb(config: DatabaseConfig, onConnectionError: (error: Error) => void = () => {}): Db {
  return isPostgresUrl(config.url) ? createPostgresDb(config, onConnectionError) : createSqliteDb(config)
}

/** The SQLite file (or `:memory:`) a DATABASE_URL that is not PostgreSQL names: an optional `sqlite:` removed. */
export const sqlitePath = (url: string) => url.replace(/^sqlite:/, '')

function createSqliteDb(config: DatabaseConfig): Db {
  const path = sqlitePath(config.url)
  const dialect = new ImmediateSqliteDialect({
    database: adaptNodeSqlite(openSqliteFile(path, config.busyTimeoutMs)),
  })
  const db = new Kysely<Database>({ dialect })
  const { usage } = dialect
  usages.set(db, () => ({ inUse: usage.inUse, idle: 1 - usage.inUse, waiting: usage.waiting, max: 1 }))
  return db
}

/** Opens (creating if need be) the file; any failure is one DatabaseFileError naming the path. */
function openSqliteFile(path: string, busyTimeoutMs: number): DatabaseSync {
  try {
    if (path !== ':memory:' && !existsSync(path)) {
      // The file holds password hashes and, unless JWT_SECRET is set, the signing key: owner-only from the
      // start. SQLite gives its -wal and -shm files the same mode.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
      closeSync(openSync(path, 'a', 0o600))
    }
    const sqlite = new DatabaseSync(path, { timeout: busyTimeoutMs, enableForeignKeyConstraints: true })
    // WAL lets readers proceed while a write is in progress; NORMAL is durable in WAL mode except on power
    // loss. The first statement is also where a file that is not SQLite is found out.
    sqlite.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;')
    return sqlite
  } catch (error) {
    throw new DatabaseFileError(path, error)
  }
}

/**
 * Kysely's SQLite dialect, but its transactions begin IMMEDIATE. Every transaction of ours writes, and most
 * read first (the row before the change). A deferred one that has read cannot wait for another process's
 * write lock: SQLite answers SQLITE_BUSY at once, without the busy timeout (found when two `tessera user`
 * commands ran side by side). IMMEDIATE takes the write lock at BEGIN, waiting up to DATABASE_BUSY_TIMEOUT_MS.
 * Within one process Kysely already runs one transaction at a time on the one connection.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig
  /** The one connection: held (1) or not (0), and how many queries wait for it. */
  readonly usage = { inUse: 0, waiting: 0 }
  constructor(config: SqliteDialectConfig) {
    super(config)
    this.#config = config
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, this.usage)
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  readonly #usage: { inUse: number; waiting: number }
  constructor(config: SqliteDialectConfig, usage: { inUse: number; waiting: number }) {
    super(config)
    this.#usage = usage
  }
  override async acquireConnection(): Promise<DatabaseConnection> {
    this.#usage.waiting++
    try {
      const connection = await super.acquireConnection()
      this.#usage.inUse = 1
      return connection
    } finally {
      this.#usage.waiting--
    }
  }
  override async releaseConnection(): Promise<void> {
    this.#usage.inUse = 0
    await super.releaseConnection()
  }
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }
}

// pg is loaded only when a PostgreSQL URL is configured: the SQLite default does not pay its memory.
const require = createRequire(import.meta.url)

// Times are epoch seconds in bigint columns; pg returns int8 as a string (it may exceed 2^53), and COUNT(*)
// is int8 too. Every value we store fits a double, so numbers they become, on this pool only.
const INT8_OID = 20

function createPostgresDb(config: DatabaseConfig, onConnectionError: (error: Error) => void): Db {
  const pg = require('pg') as typeof pgModule
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8_OID
        ? (value: string) => Number(value)
        : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  }
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    // Waiting for a connection (new, or free in a busy pool) ends here instead of hanging the request.
    connectionTimeoutMillis: config.connectTimeoutMs,
    // The server cancels a slow statement; the client gives up on a silent network after the same time.
    // 0 (for migrations only, see migrator.ts): no limit.
    ...(config.statementTimeoutMs > 0
      ? { statement_timeout: config.statementTimeoutMs, query_timeout: config.statementTimeoutMs + 1000 }
      : {}),
    idleTimeoutMillis: 30_000,
    types,
  })
  // A connection that breaks emits 'error'; with no listener, that would crash the process. The pool listens
  // on idle connections only, so checked-out ones get a listener of ours (the query in flight fails too,
  // and the pool discards the connection when it is released).
  pool.on('error', onConnectionError)
  const listened = new WeakSet<pgModule.PoolClient>()
  const db: Db = new Kysely<Database>({
    dialect: new PostgresDialect({
      pool: {
        Client: pg.Client,
        options: pool.options,
        async connect() {
          let client: pgModule.PoolClient
          try {
            client = await pool.connect()
          } catch (error) {
            throw new DatabaseUnavailableError(error)
          }
          if (!listened.has(client)) {
            listened.add(client)
            client.on('error', onConnectionError)
          }
          return client
        },
        end: () => pool.end(),
      },
    }),
  })
  usages.set(db, () => ({
    inUse: pool.totalCount - pool.idleCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
    max: config.poolSize,
  }))
  return db
}
