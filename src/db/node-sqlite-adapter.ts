// Presents node:sqlite's DatabaseSync in the shape Kysely's SqliteDialect drives (better-sqlite3's), so we
// use Kysely's own SQLite dialect, compiler and migrator rather than a third-party dialect package.
// See docs/decisions/0003-database-layer.md.
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import type { SqliteDatabase, SqliteStatement } from 'kysely'

type Parameter = null | number | bigint | string | NodeJS.ArrayBufferView

// Kysely prepares every query it runs; preparing is the costliest step of a small query, so reuse them.
const STATEMENT_CACHE_SIZE = 256

export function adaptNodeSqlite(database: DatabaseSync): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>()

  const wrap = (statement: StatementSync): SqliteStatement => {
    const reader = statement.columns().length > 0
    const args = (parameters: ReadonlyArray<unknown>) => parameters as Parameter[]
    return {
      reader,
      all: (parameters) => statement.all(...args(parameters)),
      run: (parameters) => statement.run(...args(parameters)),
      iterate: (parameters) => statement.iterate(...args(parameters)),
    }
  }

  return {
    prepare(sql) {
      let statement = statements.get(sql)
      if (statement === undefined) {
        statement = wrap(database.prepare(sql))
        if (statements.size >= STATEMENT_CACHE_SIZE) {
          const oldest = statements.keys().next().value
          if (oldest !== undefined) statements.delete(oldest)
        }
        statements.set(sql, statement)
      }
      return statement
    },
    close() {
      statements.clear()
      database.close()
    },
  }
}
