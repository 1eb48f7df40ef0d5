// The one place that picks the database dialect and opens the connection.
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { Kysely, SqliteDialect } from 'kysely'
import type { Config } from '../config/load-config.ts'
import type { Database, Db } from './database.ts'
import { adaptNodeSqlite } from './node-sqlite-adapter.ts'

export function createDb(config: Config['database']): Db {
  const path = config.url.replace(/^sqlite:/, '')
  if (path !== ':memory:' && !existsSync(path)) {
    // The file holds password hashes and, unless JWT_SECRET is set, the signing key: owner-only from the
    // start. SQLite gives its -wal and -shm files the same mode.
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    closeSync(openSync(path, 'a', 0o600))
  }
  const sqlite = new DatabaseSync(path, { timeout: config.busyTimeoutMs, enableForeignKeyConstraints: true })
  // WAL lets readers proceed while a write is in progress; NORMAL is durable in WAL mode except on power loss.
  sqlite.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;')
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: adaptNodeSqlite(sqlite) }) })
}
