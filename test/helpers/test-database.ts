// The backends a test run uses. `npm test` (test/run.ts) runs the suite once per backend combination and
// says which through these variables; a test file run on its own uses in-memory SQLite and no Redis.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { withSearchPath } from '../../src/db/create-db.ts'

/** Set for the PostgreSQL runs: every test database is a schema of its own in this database. */
export const TEST_POSTGRES_URL = process.env.TESSERA_TEST_POSTGRES_URL || undefined
/** Set for the Redis runs: every test app gets a key prefix of its own on this server. */
export const TEST_REDIS_URL = process.env.TESSERA_TEST_REDIS_URL || undefined

export type TestDatabase = { url: string; drop(): Promise<void> }

let admin: pg.Pool | undefined

/** Runs SQL on the PostgreSQL test database outside any schema (creating and dropping schemas). */
export async function adminQuery(text: string): Promise<void> {
  if (!TEST_POSTGRES_URL) throw new Error('Not a PostgreSQL test run')
  admin ??= new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 2, allowExitOnIdle: true })
  await admin.query(text)
}

/**
 * A new, empty database for one test: in a PostgreSQL run, a schema of its own (dropped by `drop`);
 * otherwise `sqliteFile` when given (for tests that share it between processes), else in-memory SQLite.
 */
export async function createTestDatabase(options: { sqliteFile?: string } = {}): Promise<TestDatabase> {
  if (!TEST_POSTGRES_URL) return { url: options.sqliteFile ?? ':memory:', drop: async () => {} }
  const schema = `test_${randomUUID().replaceAll('-', '')}`
  await adminQuery(`create schema ${schema}`)
  return {
    url: withSearchPath(TEST_POSTGRES_URL, schema),
    drop: () => adminQuery(`drop schema if exists ${schema} cascade`),
  }
}

/** Redis settings for one test app: a private key prefix on the test Redis, or none in a run without it. */
export function testRedisEnv(): Record<string, string> {
  if (!TEST_REDIS_URL) return {}
  return { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `test:${randomUUID()}:` }
}

/** Databases that a test shares between several apps or processes, all dropped by `dropAll`. */
export function sharedTestDatabases() {
  const made: TestDatabase[] = []
  return {
    /** In a PostgreSQL run a new schema; otherwise the SQLite file `sqliteFile`. */
    async url(sqliteFile: string): Promise<string> {
      const database = await createTestDatabase({ sqliteFile })
      made.push(database)
      return database.url
    },
    async dropAll(): Promise<void> {
      await Promise.all(made.splice(0).map((database) => database.drop()))
    },
  }
}
