// Upgrade: this code beside the previous release (BENCH_PREVIOUS, the commit before issue 12's change), measured
// in the same run. The previous release is checked out in a git worktree in a temp dir (node_modules a symlink to
// this repo's), and served by this bench's own server script, copied into the worktree's bench/servers/ so that it
// runs against the old src/. Each server pinned like the others, on a fresh SQLite file or PostgreSQL schema:
// - POST /auth/refresh req/s on SQLite and on PostgreSQL, this / previous in the same rounds (../lib/lua/refresh.lua);
// - PostgreSQL WAL bytes per refresh: pg_current_wal_lsn() before and after N sequential refreshes of one session,
//   each with the token the previous answer gave, and the rows that session holds (sessions + refresh_tokens).
// The worktree is removed when the section ends, also when it fails.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { withSearchPath } from '../../src/db/create-db.ts'
import { defineSection, setting } from '../lib/context.ts'
import { peakRssMb, type ServerProcess, startServer } from '../lib/processes.ts'
import {
  LOAD_TABLE_LEGEND,
  type LoadRow,
  loadTable,
  num,
  range,
  ratio,
  runNotes,
  table,
} from '../lib/report.ts'
import { combine, type Route, type Runs, roundRatios, rps, runRounds } from '../lib/rounds.ts'
import { issue, postJson, refreshLoad, signUp, tesseraEnv } from '../lib/tessera.ts'

const previous = process.env.BENCH_PREVIOUS || 'a5414f3'
const postgresUrl = process.env.BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test'
/** Sequential refreshes of one session between the two readings of the WAL position. */
const walRefreshes = setting('BENCH_WAL_REFRESHES', 2000)
const spareSessions = setting('BENCH_SPARE_SESSIONS', 10)
const repo = join(import.meta.dirname, '..', '..')
/** What the bench's server script needs of bench/servers/ (tessera-server.ts and what it imports there). */
const SERVER_FILES = ['tessera-server.ts', 'bench-response.ts']

const BACKENDS = ['sqlite', 'postgres'] as const
type Backend = (typeof BACKENDS)[number]
const VERSIONS = ['this', 'previous'] as const
type Version = (typeof VERSIONS)[number]
const LABELS: Record<Backend, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' }
const runName = (backend: Backend, version: Version) =>
  `${LABELS[backend]}: POST /auth/refresh, ${version === 'this' ? 'this code' : previous}`

type Chain = { walBytesPerRefresh: number; rowsAfterFirst: number; rowsAfterAll: number }
type Result = {
  runs: Runs
  peakMb: Map<string, number>
  chains: Map<Version, Chain>
  previousCommit: string
}

const git = (...args: string[]) => {
  const result = spawnSync('git', args, { cwd: repo, encoding: 'utf8' })
  if (result.error || result.status !== 0)
    throw new Error(`git ${args.join(' ')}: ${result.error?.message ?? result.stderr.trim()}`)
  return result.stdout.trim()
}

async function withClient<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

/** The session id (`sid`) of an access token, read without verifying it. */
function sessionOf(accessToken: string): string {
  const payload = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'))
  if (typeof payload.sid !== 'string') throw new Error('an access token without sid')
  return payload.sid
}

/**
 * One new session, refreshed once (to learn its id), then `walRefreshes` times in sequence, each with the token the
 * previous answer gave, between two readings of pg_current_wal_lsn(); and its rows after the first and the last.
 */
async function refreshChain(server: ServerProcess, headers: Record<string, string>, schema: string) {
  const [first] = (await issue(server, '/bench/sessions', headers, 1)).tokens
  const refresh = async (token: string) => {
    const answer = await postJson(server, '/auth/refresh', { refresh_token: token })
    return { token: String(answer.refresh_token), access: String(answer.access_token) }
  }
  const start = await refresh(first ?? '')
  const sid = sessionOf(start.access)
  return withClient(async (client) => {
    const rows = async () => {
      const { rows } = await client.query<{ n: string }>(
        `select (select count(*) from ${schema}.sessions where id = $1) + ` +
          `(select count(*) from ${schema}.refresh_tokens where session_id = $1) as n`,
        [sid],
      )
      return Number(rows[0]?.n)
    }
    const lsn = async () =>
      (await client.query<{ lsn: string }>('select pg_current_wal_lsn() as lsn')).rows[0]?.lsn
    const rowsAfterFirst = await rows()
    const before = await lsn()
    let token = start.token
    for (let i = 0; i < walRefreshes; i++) token = (await refresh(token)).token
    const after = await lsn()
    const { rows: diff } = await client.query<{ bytes: string }>('select pg_wal_lsn_diff($1, $2) as bytes', [
      after,
      before,
    ])
    return {
      walBytesPerRefresh: Number(diff[0]?.bytes) / walRefreshes,
      rowsAfterFirst,
      rowsAfterAll: await rows(),
    }
  })
}

export default defineSection<Result>({
  name: 'upgrade',
  description: `POST /auth/refresh (SQLite, PostgreSQL) and PostgreSQL WAL per refresh, beside ${previous}`,

  async run(ctx) {
    const { settings } = ctx
    const previousCommit = git('rev-parse', '--short', `${previous}^{commit}`)
    const schemas: string[] = []
    ctx.onCleanup(async () => {
      const dropping = schemas.splice(0)
      if (dropping.length === 0) return
      await withClient(async (client) => {
        for (const schema of dropping) await client.query(`drop schema if exists ${schema} cascade`)
      })
    })
    const treeParent = mkdtempSync(join(os.tmpdir(), 'tessera-previous-'))
    const tree = join(treeParent, 'tree')
    let removed = false
    const removeTree = () => {
      if (removed) return
      removed = true
      if (existsSync(tree)) {
        const result = spawnSync('git', ['worktree', 'remove', '--force', tree], {
          cwd: repo,
          encoding: 'utf8',
        })
        if (result.status !== 0) console.error(`bench: git worktree remove ${tree}: ${result.stderr.trim()}`)
      }
      rmSync(treeParent, { recursive: true, force: true })
    }
    ctx.onCleanup(async () => removeTree())
    const previousServers: ServerProcess[] = []
    try {
      git('worktree', 'add', '--detach', tree, previousCommit)
      symlinkSync(join(repo, 'node_modules'), join(tree, 'node_modules'), 'dir')
      mkdirSync(join(tree, 'bench', 'servers'), { recursive: true })
      for (const file of SERVER_FILES) {
        cpSync(join(repo, 'bench', 'servers', file), join(tree, 'bench', 'servers', file))
      }

      let started = 0
      const start = async (backend: Backend, version: Version) => {
        const name = `Tessera, ${runName(backend, version)}`
        let databaseUrl = join(ctx.tempDir, `upgrade-${++started}.db`)
        let schema = ''
        if (backend === 'postgres') {
          schema = `tessera_bench_${randomBytes(6).toString('hex')}`
          await withClient((client) => client.query(`create schema ${schema}`))
          schemas.push(schema)
          databaseUrl = withSearchPath(postgresUrl, schema)
        }
        if (version === 'this')
          return { server: await ctx.startTessera(name, { DATABASE_URL: databaseUrl }), schema }
        const env = {
          ...tesseraEnv(ctx.tempDir, `upgrade-${started}`, settings.logLevel),
          DATABASE_URL: databaseUrl,
        }
        const server = await startServer(name, join(tree, 'bench', 'servers', 'tessera-server.ts'), {
          cpus: settings.serverCpus,
          start: { type: 'start', env },
          execArgv: settings.serverExecArgv,
        })
        previousServers.push(server)
        return { server, schema }
      }

      const servers = new Map<
        string,
        { server: ServerProcess; schema: string; headers: Record<string, string> }
      >()
      const routes: Route[] = []
      for (const backend of BACKENDS) {
        for (const version of VERSIONS) {
          const name = runName(backend, version)
          const { server, schema } = await start(backend, version)
          const { headers } = await signUp(server)
          servers.set(name, { server, schema, headers })
          const file = join(ctx.tempDir, `upgrade-refresh-${backend}-${version}.txt`)
          const options = {
            file,
            sessions: settings.connections + spareSessions,
            connections: settings.connections,
            databaseProcesses: backend === 'postgres' ? ['postgres'] : [],
          }
          routes.push({ name, load: (seconds) => refreshLoad(server, headers, { ...options, seconds }) })
        }
      }
      const runs = await runRounds(ctx, routes, {
        rounds: settings.sectionRounds,
        seconds: settings.sectionDurationSeconds,
        warmupSeconds: settings.sectionWarmupSeconds,
      })

      const chains = new Map<Version, Chain>()
      for (const version of VERSIONS) {
        const entry = servers.get(runName('postgres', version))
        if (entry) chains.set(version, await refreshChain(entry.server, entry.headers, entry.schema))
      }
      const peakMb = new Map<string, number>()
      for (const [name, { server }] of servers) {
        peakMb.set(name, peakRssMb(server.pid))
        await server.stop()
      }
      return { runs, peakMb, chains, previousCommit }
    } finally {
      await Promise.allSettled(previousServers.map((server) => server.stop()))
      removeTree()
    }
  },

  print({ runs, peakMb, chains, previousCommit }, ctx) {
    const { settings } = ctx
    const of = (name: string) => runs.get(name) ?? []
    const rows: LoadRow[] = BACKENDS.flatMap((backend) =>
      VERSIONS.map((version) => {
        const name = runName(backend, version)
        return { label: name, runs: of(name), peakMb: peakMb.get(name) ?? Number.NaN }
      }),
    )
    const chain = (version: Version) => chains.get(version)
    const walRatio =
      (chain('this')?.walBytesPerRefresh ?? Number.NaN) /
      (chain('previous')?.walBytesPerRefresh ?? Number.NaN)
    const lines = [
      `Upgrade: this code beside the previous release (BENCH_PREVIOUS=${previous}, commit ${previousCommit}, from a ` +
        `git worktree, served by this bench's server script), ${settings.sectionRounds} rounds of ` +
        `${settings.sectionDurationSeconds} s`,
      `  SQLite: a fresh file per process; PostgreSQL (${postgresUrl.replace(/\/\/[^@]*@/, '//')}): a fresh schema ` +
        'per process, the default pool',
      ...loadTable(rows, 'postgres CPU'),
      ...LOAD_TABLE_LEGEND,
      `  refresh: each run on ${settings.connections + spareSessions} sessions started just before it, each request ` +
        'spending the token the previous response of its session handed out.',
      '',
      `This code / ${previous} in the same rounds (median of the per-round ratios, and their range)`,
      ...table(
        ['POST /auth/refresh', 'this req/s', `${previous} req/s`, 'ratio', 'range'],
        BACKENDS.map((backend) => {
          const mine = of(runName(backend, 'this'))
          const theirs = of(runName(backend, 'previous'))
          const stats = roundRatios(mine, theirs, rps)
          return [
            LABELS[backend],
            num(combine(mine).requestsPerSecond),
            num(combine(theirs).requestsPerSecond),
            ratio(stats.median),
            range(stats),
          ]
        }),
      ),
      '',
      `PostgreSQL, one session refreshed ${num(walRefreshes)} times in sequence (each with the token the previous ` +
        'answer gave): WAL written (pg_wal_lsn_diff of pg_current_wal_lsn() before and after) per refresh, and the ' +
        "session's rows (sessions + refresh_tokens)",
      ...table(
        ['code', 'WAL bytes/refresh', 'rows after 1 refresh', `rows after ${num(walRefreshes + 1)}`],
        VERSIONS.map((version) => {
          const measured = chain(version)
          return [
            version === 'this' ? 'this code' : previous,
            num(measured?.walBytesPerRefresh ?? Number.NaN),
            num(measured?.rowsAfterFirst ?? Number.NaN),
            num(measured?.rowsAfterAll ?? Number.NaN),
          ]
        }),
      ),
      `  WAL per refresh, this / ${previous}: ${ratio(walRatio)} (the whole cluster's WAL: anything else written ` +
        'meanwhile counts too)',
      '',
    ]
    return { lines, notes: [...runs].flatMap(([name, results]) => runNotes(name, results, ctx.wrk.threads)) }
  },
})
