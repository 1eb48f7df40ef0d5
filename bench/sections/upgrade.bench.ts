// Upgrade: this code beside the previous release (BENCH_PREVIOUS, the commit before issue 12's change), measured
// in the same run (the previous release from a git worktree: ../lib/previous.ts). Each server pinned like the
// others, on a fresh SQLite file or PostgreSQL schema:
// - POST /auth/refresh req/s on SQLite and on PostgreSQL, this / previous in the same rounds (../lib/lua/refresh.lua);
// - PostgreSQL WAL bytes per refresh: pg_current_wal_lsn() before and after N sequential refreshes of one session,
//   each with the token the previous answer gave, and the rows that session holds (sessions + refresh_tokens).
import { join } from 'node:path'
import { defineSection, setting } from '../lib/context.ts'
import {
  BACKENDS,
  type Backend,
  freshDatabases,
  BACKEND_LABELS as LABELS,
  postgresShown,
  withPostgres,
} from '../lib/databases.ts'
import { checkOutPrevious } from '../lib/previous.ts'
import { peakRssMb, type ServerProcess } from '../lib/processes.ts'
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
import { issue, postJson, refreshLoad, signUp } from '../lib/tessera.ts'

const previous = process.env.BENCH_PREVIOUS || 'a5414f3'
/** Sequential refreshes of one session between the two readings of the WAL position. */
const walRefreshes = setting('BENCH_WAL_REFRESHES', 2000)
const spareSessions = setting('BENCH_SPARE_SESSIONS', 10)

const VERSIONS = ['this', 'previous'] as const
type Version = (typeof VERSIONS)[number]
const runName = (backend: Backend, version: Version) =>
  `${LABELS[backend]}: POST /auth/refresh, ${version === 'this' ? 'this code' : previous}`

type Chain = { walBytesPerRefresh: number; rowsAfterFirst: number; rowsAfterAll: number }
type Result = {
  runs: Runs
  peakMb: Map<string, number>
  chains: Map<Version, Chain>
  previousCommit: string
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
  return withPostgres(async (client) => {
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
    const database = freshDatabases(ctx)
    const tree = checkOutPrevious(ctx, previous)
    try {
      let started = 0
      const start = async (backend: Backend, version: Version) => {
        const name = `Tessera, ${runName(backend, version)}`
        const { url, schema = '' } = await database(backend, `upgrade-${++started}`)
        const server =
          version === 'this'
            ? await ctx.startTessera(name, { DATABASE_URL: url })
            : await tree.start(name, `upgrade-${started}`, { DATABASE_URL: url })
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
      return { runs, peakMb, chains, previousCommit: tree.commit }
    } finally {
      await tree.remove()
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
      `  SQLite: a fresh file per process; PostgreSQL (${postgresShown}): a fresh schema ` +
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
