// The databases a section's Tessera processes run on: a fresh SQLite file in the bench's temp dir, or a fresh
// PostgreSQL schema (BENCH_POSTGRES_URL), dropped when the bench ends, also after a failure.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import { withSearchPath } from '../../src/db/create-db.ts'
import type { Context } from './context.ts'

export const BACKENDS = ['sqlite', 'postgres'] as const
export type Backend = (typeof BACKENDS)[number]
export const BACKEND_LABELS: Record<Backend, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' }
export const postgresUrl = process.env.BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test'
/** The PostgreSQL URL without its credentials, for the report. */
export const postgresShown = postgresUrl.replace(/\/\/[^@]*@/, '//')

/** Runs `use` on a connection of its own: the sections need a handful, far apart. */
export async function withPostgres<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

export type BenchDatabase = { url: string; schema?: string }

/** A function that makes a fresh database for each call; the schemas it makes are dropped at cleanup. */
export function freshDatabases(ctx: Pick<Context, 'tempDir' | 'onCleanup'>) {
  const schemas: string[] = []
  ctx.onCleanup(async () => {
    const dropping = schemas.splice(0)
    if (dropping.length === 0) return
    await withPostgres(async (client) => {
      for (const schema of dropping) await client.query(`drop schema if exists ${schema} cascade`)
    })
  })
  return async (backend: Backend, file: string): Promise<BenchDatabase> => {
    if (backend === 'sqlite') return { url: join(ctx.tempDir, `${file}.db`) }
    const schema = `tessera_bench_${randomBytes(6).toString('hex')}`
    await withPostgres((client) => client.query(`create schema ${schema}`))
    schemas.push(schema)
    return { url: withSearchPath(postgresUrl, schema), schema }
  }
}
