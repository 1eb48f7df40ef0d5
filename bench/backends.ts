// The PostgreSQL schemas and Redis key prefixes of the bench's Tessera processes. Each process gets a schema of
// its own, created empty here, so that it migrates and signs up on a clean database as on a fresh SQLite file;
// all of them are dropped when the bench ends, also when a section failed.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { withSearchPath } from '../src/db/create-db.ts'

/** Runs one statement on its own connection: the bench needs a handful, far apart. */
async function query(connectionString: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
}

/** A unique name for this run, so that two benches, or a bench and the tests, never share state. */
const uniqueName = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`

export type PostgresSchemas = {
  /** Creates an empty schema; returns the DATABASE_URL that points Tessera at it. */
  create(): Promise<string>
  dropAll(): Promise<void>
}

export function postgresSchemas(url: string): PostgresSchemas {
  const created: string[] = []
  return {
    async create() {
      const schema = uniqueName('tessera_bench')
      await query(url, `create schema ${schema}`)
      created.push(schema)
      return withSearchPath(url, schema)
    },
    async dropAll() {
      for (const schema of created.splice(0)) await query(url, `drop schema if exists ${schema} cascade`)
    },
  }
}

/**
 * A unique REDIS_KEY_PREFIX. With the rate limits off, Tessera writes no keys to Redis (it only publishes
 * revocations on `<prefix>revocations`), so there is nothing to delete afterwards.
 */
export const redisKeyPrefix = () => `${uniqueName('tessera-bench')}:`
