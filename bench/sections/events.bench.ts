// Events: what the security events of issue 13 cost. POST /auth/login (each records login.succeeded) and
// POST /auth/refresh (records nothing, but runs through the units of work events brought) on three servers per
// backend, in the same rounds:
// - before: the commit before issue 13 (BENCH_EVENTS_BASELINE), from a git worktree (../lib/previous.ts);
// - events: this code, no webhooks;
// - webhooks: this code sending every event to a receiver (../servers/webhook-receiver.ts, pinned with wrk, answering
//   204 at once), so that each login also writes, claims, sends and marks a delivery.
// Each on a fresh SQLite file or PostgreSQL schema, pinned like the others. The targets: at most 10% fewer
// logins/s and refreshes/s with events on (issue 13); the webhooks rows are held to the same.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { defineSection, setting } from '../lib/context.ts'
import { BACKEND_LABELS, BACKENDS, type Backend, freshDatabases, postgresShown } from '../lib/databases.ts'
import { checkOutPrevious } from '../lib/previous.ts'
import { peakRssMb, type ServerProcess, startServer } from '../lib/processes.ts'
import { LOAD_TABLE_LEGEND, type LoadRow, loadTable, num, runNotes, type TargetRow } from '../lib/report.ts'
import { combine, type Route, type Runs, roundRatios, rps, runRounds } from '../lib/rounds.ts'
import { refreshLoad, signUp } from '../lib/tessera.ts'

const baseline = process.env.BENCH_EVENTS_BASELINE || 'c4a018f^'
const rounds = setting('BENCH_EVENTS_ROUNDS', 3)
const seconds = setting('BENCH_EVENTS_DURATION', 4)
const spareSessions = setting('BENCH_SPARE_SESSIONS', 10)

const VARIANTS = ['before', 'events', 'webhooks'] as const
type Variant = (typeof VARIANTS)[number]
const MEASUREMENTS = ['POST /auth/login', 'POST /auth/refresh'] as const
type Measurement = (typeof MEASUREMENTS)[number]
const runName = (backend: Backend, measurement: Measurement, variant: Variant) =>
  `${BACKEND_LABELS[backend]}: ${measurement}, ${variant}`

type Result = { runs: Runs; peakMb: Map<string, number>; baselineCommit: string; received: number }

/** A Standard Webhooks secret: whsec_ and base64 of 32 random bytes. */
const webhookSecret = () => `whsec_${randomBytes(32).toString('base64')}`

export default defineSection<Result>({
  name: 'events',
  description: `logins/s and refreshes/s with security events, and with webhooks, beside ${baseline}`,

  async run(ctx) {
    const { settings } = ctx
    const database = freshDatabases(ctx)
    const tree = checkOutPrevious(ctx, baseline)
    let receiver: ServerProcess | undefined
    try {
      receiver = await startServer(
        'webhook receiver',
        join(import.meta.dirname, '..', 'servers', 'webhook-receiver.ts'),
        { cpus: settings.loadCpus },
      )
      const receiverUrl = `http://127.0.0.1:${receiver.port}/hooks`
      const servers = new Map<string, ServerProcess>()
      const routes: Route[] = []
      let started = 0
      for (const backend of BACKENDS) {
        const byVariant = new Map<Variant, Route[]>()
        for (const variant of VARIANTS) {
          const file = `events-${++started}`
          const { url } = await database(backend, file)
          const name = `Tessera, ${BACKEND_LABELS[backend]}, ${variant}`
          const server =
            variant === 'before'
              ? await tree.start(name, file, { DATABASE_URL: url })
              : await ctx.startTessera(name, {
                  DATABASE_URL: url,
                  ...(variant === 'webhooks'
                    ? { WEBHOOK_URL: receiverUrl, WEBHOOK_SECRET: webhookSecret() }
                    : {}),
                })
          servers.set(`${BACKEND_LABELS[backend]}, ${variant}`, server)
          const { credentials, headers } = await signUp(server)
          const databaseProcesses = backend === 'postgres' ? ['postgres'] : []
          const tokens = join(ctx.tempDir, `${file}-refresh.txt`)
          byVariant.set(variant, [
            {
              name: runName(backend, 'POST /auth/login', variant),
              load: (duration) => ({
                server,
                path: '/auth/login',
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify(credentials),
                // Enough to keep the hash threads busy (see the logins section), not the 50 of the others.
                connections: 2 * settings.serverCores,
                durationSeconds: duration,
                databaseProcesses,
                countStatuses: true,
              }),
            },
            {
              name: runName(backend, 'POST /auth/refresh', variant),
              load: (duration) =>
                refreshLoad(server, headers, {
                  file: tokens,
                  sessions: settings.connections + spareSessions,
                  connections: settings.connections,
                  seconds: duration,
                  databaseProcesses,
                }),
            },
          ])
        }
        // The three variants of a measurement back to back, so that each ratio compares runs close in time.
        for (const index of MEASUREMENTS.keys()) {
          for (const variant of VARIANTS) {
            const route = byVariant.get(variant)?.[index]
            if (route) routes.push(route)
          }
        }
      }
      const runs = await runRounds(ctx, routes, {
        rounds,
        seconds,
        warmupSeconds: settings.sectionWarmupSeconds,
      })
      const peakMb = new Map<string, number>()
      for (const [name, server] of servers) {
        peakMb.set(name, peakRssMb(server.pid))
        await server.stop()
      }
      const count = await fetch(`http://127.0.0.1:${receiver.port}/count`)
      const { received } = (await count.json()) as { received: number }
      return { runs, peakMb, baselineCommit: tree.commit, received }
    } finally {
      await receiver?.stop()
      await tree.remove()
    }
  },

  print({ runs, peakMb, baselineCommit, received }, ctx) {
    const of = (name: string) => runs.get(name) ?? []
    const rows: LoadRow[] = BACKENDS.flatMap((backend) =>
      MEASUREMENTS.flatMap((measurement) =>
        VARIANTS.map((variant) => ({
          label: runName(backend, measurement, variant),
          runs: of(runName(backend, measurement, variant)),
          peakMb: peakMb.get(`${BACKEND_LABELS[backend]}, ${variant}`) ?? Number.NaN,
        })),
      ),
    )
    const targets: TargetRow[] = BACKENDS.flatMap((backend) =>
      MEASUREMENTS.flatMap((measurement) =>
        (['events', 'webhooks'] as const).map((variant): TargetRow => {
          const mine = of(runName(backend, measurement, variant))
          const before = of(runName(backend, measurement, 'before'))
          const stats = roundRatios(mine, before, rps)
          return {
            name: `${BACKEND_LABELS[backend]} ${measurement}, ${variant} / before`,
            measured: `${num(combine(mine).requestsPerSecond)}/s`,
            baseline: `${num(combine(before).requestsPerSecond)}/s`,
            value: stats.median,
            range: stats,
            target: { op: '>=', limit: 0.9, unit: 'x' },
          }
        }),
      ),
    )
    const lines = [
      `Events: this code with events ("events") and with webhooks to a local receiver ("webhooks") beside the ` +
        `commit before issue 13 ("before": BENCH_EVENTS_BASELINE=${baseline}, commit ${baselineCommit}, from a git ` +
        `worktree), ${rounds} rounds of ${seconds} s`,
      `  SQLite: a fresh file per process; PostgreSQL (${postgresShown}): a fresh schema per process`,
      `  login: one user, ${2 * ctx.settings.serverCores} connections, production argon2id; refresh: ` +
        `${ctx.settings.connections} connections, each run on sessions of its own`,
      `  the receiver (pinned with wrk) took ${num(received)} webhooks in all`,
      ...loadTable(rows, 'postgres CPU'),
      ...LOAD_TABLE_LEGEND,
      '',
    ]
    return {
      lines,
      targets,
      notes: [...runs].flatMap(([name, results]) => runNotes(name, results, ctx.wrk.threads)),
    }
  },
})
