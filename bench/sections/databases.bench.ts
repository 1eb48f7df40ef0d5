// Databases: GET /auth/me, POST /auth/refresh and GET /auth/me with the revocation state cache off
// (AUTH_STATE_CACHE_TTL_MS=0: the database on every request), each on SQLite and on PostgreSQL, each in a Tessera
// process of its own (refreshes leave garbage behind; the cache-off one needs its own setting), in the same
// rounds as bare Fastify. PostgreSQL: a fresh schema per process, the default DATABASE_POOL_SIZE.
import { join } from 'node:path'
import { defineSection, list, setting } from '../lib/context.ts'
import {
  BACKENDS,
  type Backend,
  freshDatabases,
  BACKEND_LABELS as LABELS,
  postgresShown,
} from '../lib/databases.ts'
import { peakRssMb, type ServerProcess } from '../lib/processes.ts'
import { LOAD_TABLE_LEGEND, type LoadRow, loadTable, range, ratio, runNotes, table } from '../lib/report.ts'
import { p99Of, type Route, type Runs, roundRatios, rps, runRounds } from '../lib/rounds.ts'
import { refreshLoad, signUp, tesseraConfig } from '../lib/tessera.ts'

const backends = list('BENCH_BACKENDS', BACKENDS, BACKENDS)
const MEASUREMENTS = ['GET /auth/me', 'POST /auth/refresh', 'GET /auth/me, cache off'] as const
type Measurement = (typeof MEASUREMENTS)[number]
const runName = (backend: Backend, measurement: Measurement) => `${LABELS[backend]}: ${measurement}`
/** Sessions per refresh run, beyond one per connection; see ../lib/lua/refresh.lua. */
const spareSessions = setting('BENCH_SPARE_SESSIONS', 10)

type Result = { runs: Runs; peakMb: Map<string, number>; poolSize: number }

export default defineSection<Result>({
  name: 'databases',
  description:
    'GET /auth/me, POST /auth/refresh and /auth/me with the state cache off, on SQLite and PostgreSQL',

  async run(ctx) {
    const { settings } = ctx
    const database = freshDatabases(ctx)
    const servers = new Map<string, ServerProcess>()
    let bareHeaders: Record<string, string> = {}
    const route = async (backend: Backend, measurement: Measurement): Promise<Route> => {
      const name = runName(backend, measurement)
      const server = await ctx.startTessera(`Tessera, ${name}`, {
        DATABASE_URL: (await database(backend, `databases-${MEASUREMENTS.indexOf(measurement)}`)).url,
        ...(measurement === 'GET /auth/me, cache off' ? { AUTH_STATE_CACHE_TTL_MS: '0' } : {}),
      })
      servers.set(name, server)
      const { headers } = await signUp(server)
      bareHeaders = headers
      const databaseProcesses = backend === 'postgres' ? ['postgres'] : []
      const base = { server, connections: settings.connections, databaseProcesses }
      if (measurement !== 'POST /auth/refresh') {
        return { name, load: (seconds) => ({ ...base, path: '/auth/me', headers, durationSeconds: seconds }) }
      }
      const file = join(ctx.tempDir, `refresh-${backend}.txt`)
      const sessions = settings.connections + spareSessions
      return {
        name,
        load: (seconds) => refreshLoad(server, headers, { ...base, file, sessions, seconds }),
      }
    }
    const routes: Route[] = []
    for (const measurement of MEASUREMENTS) {
      for (const backend of backends) routes.push(await route(backend, measurement))
    }
    // Bare Fastify is sent the Authorization header of a bench user, as in the requests section.
    routes.unshift({
      name: 'bare',
      load: (seconds) => ({
        server: ctx.bare,
        path: '/bench/bare',
        headers: bareHeaders,
        connections: settings.connections,
        durationSeconds: seconds,
      }),
    })
    const runs = await runRounds(ctx, routes, {
      rounds: settings.sectionRounds,
      seconds: settings.sectionDurationSeconds,
      warmupSeconds: settings.sectionWarmupSeconds,
    })
    const peakMb = new Map<string, number>()
    for (const [name, server] of servers) {
      peakMb.set(name, peakRssMb(server.pid))
      await server.stop()
    }
    return { runs, peakMb, poolSize: tesseraConfig(ctx.tempDir).database.poolSize }
  },

  print({ runs, peakMb, poolSize }, ctx) {
    const { settings } = ctx
    const of = (name: string) => runs.get(name) ?? []
    const bare = of('bare')
    const rows: LoadRow[] = MEASUREMENTS.flatMap((measurement) =>
      backends.map((backend) => {
        const name = runName(backend, measurement)
        return { label: name, runs: of(name), bare, peakMb: peakMb.get(name) ?? Number.NaN }
      }),
    )
    const lines = [
      `Databases: one Tessera process per backend and measurement, ${settings.sectionRounds} rounds of ` +
        `${settings.sectionDurationSeconds} s beside bare Fastify`,
      `  SQLite: a fresh file per process; PostgreSQL (${postgresShown}): a fresh schema ` +
        `per process, DATABASE_POOL_SIZE ${poolSize}; neither pinned by the bench`,
      ...loadTable([{ label: 'bare Fastify', runs: bare }, ...rows], 'postgres CPU'),
      ...LOAD_TABLE_LEGEND,
      '  "cache off": AUTH_STATE_CACHE_TTL_MS=0, the session and user read from the database on every request.',
      `  refresh: each run on ${settings.connections + spareSessions} sessions started just before it, each request ` +
        'spending the token the previous response of its session handed out.',
      '  postgres CPU: every postgres process on the machine; peak RSS: the life of the Tessera process.',
      '',
    ]
    if (backends.length === 2) {
      lines.push(
        'PostgreSQL / SQLite in the same rounds (median of the per-round ratios, and their range)',
        ...table(
          ['measurement', 'req/s', 'range', 'p99', 'range'],
          MEASUREMENTS.map((measurement) => {
            const throughput = roundRatios(
              of(runName('postgres', measurement)),
              of(runName('sqlite', measurement)),
              rps,
            )
            const p99 = roundRatios(
              of(runName('postgres', measurement)),
              of(runName('sqlite', measurement)),
              p99Of,
            )
            return [measurement, ratio(throughput.median), range(throughput), ratio(p99.median), range(p99)]
          }),
        ),
        '',
      )
    }
    return { lines, notes: [...runs].flatMap(([name, results]) => runNotes(name, results, ctx.wrk.threads)) }
  },
})
