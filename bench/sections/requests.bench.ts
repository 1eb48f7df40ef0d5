// Requests: bare Fastify (with and without the bench user's Authorization header), then Tessera's signature-only,
// verify-only and GET /auth/me, in rounds, on one Tessera process. Gives the two throughput targets, the cost of
// the revocation check (verify-only / signature-only), and the serving peak RSS.
import { defineSection } from '../lib/context.ts'
import { peakRssMb, resetPeakRss, type ServerProcess, startServer } from '../lib/processes.ts'
import {
  LOAD_TABLE_LEGEND,
  loadTable,
  mb,
  num,
  range,
  ratio,
  runNotes,
  type TargetRow,
  table,
} from '../lib/report.ts'
import { combine, p99Of, type Route, type Runs, roundRatios, rps, runRounds } from '../lib/rounds.ts'
import { signUp } from '../lib/tessera.ts'

/** Peaks in MB: over the rounds (`serving`), and over the process's whole life, its start and the sign-up too. */
type Peaks = { serving: number; life: number }
type Result = { runs: Runs; tessera: Peaks; bare: Peaks }

const ROUTES = [
  ['bare Fastify', 'bare'],
  ['bare Fastify, no token sent', 'bare, no token'],
  ['bare Fastify, never collected', 'bare, never collected'],
  ['GET /bench/signature-only', 'signature-only'],
  ['GET /bench/verify-only', 'verify-only'],
  ['GET /auth/me', 'GET /auth/me'],
] as const

export default defineSection<Result>({
  name: 'requests',
  description:
    'bare Fastify, signature-only, verify-only and GET /auth/me in the same rounds, on one Tessera process',

  async run(ctx) {
    const { bare, settings } = ctx
    const tessera = await ctx.startTessera('Tessera')
    // The same bare Fastify, spared the collection below: what the baseline would be without it.
    const uncollected = await startServer('bare Fastify, never collected', ctx.bareFile, {
      cpus: settings.serverCpus,
    })
    const { headers } = await signUp(tessera)
    // The serving peak is measured from here. Left out: the sign-up's argon2id hash (19 MiB of working memory
    // while it runs, a login's cost too, which the logins section's storm target counts) and the common-password
    // list's first load (a registration's, which no target counts; the list itself stays in, 3.5 MB). The whole
    // life's peak, both included, is printed beside it.
    const setupPeaks = { tessera: peakRssMb(tessera.pid), bare: peakRssMb(bare.pid) }
    resetPeakRss(tessera.pid)
    resetPeakRss(bare.pid)
    const get = (name: string, server: ServerProcess, path: string, sent = headers): Route => ({
      name,
      load: (seconds) => ({
        server,
        path,
        headers: sent,
        connections: settings.connections,
        durationSeconds: seconds,
      }),
    })
    // Bare Fastify is sent the same requests, the Authorization header included, so that a ratio counts what the
    // server does with a request, not how many bytes it reads: the token is most of them (~480 of ~560). Once
    // more without the header: what reading a token costs a server that does nothing with it.
    const routes = [
      get('bare', bare, '/bench/bare'),
      get('bare, no token', bare, '/bench/bare', {}),
      get('bare, never collected', uncollected, '/bench/bare'),
      get('signature-only', tessera, '/bench/signature-only'),
      get('verify-only', tessera, '/bench/verify-only'),
      get('GET /auth/me', tessera, '/auth/me'),
    ]
    const runs = await runRounds(ctx, routes, {
      rounds: settings.rounds,
      seconds: settings.durationSeconds,
      warmupSeconds: settings.warmupSeconds,
      // After the warm-up, while idle, bare Fastify and Tessera each get full collections, so that both are
      // measured as a server is once V8 has collected it while idle, which its memory reducer does to any
      // long-running server. The first such collection frees the object shapes of Node's own process.nextTick
      // tick objects, whose creation then stays on V8's slow path for the life of the process: bare Fastify
      // loses about 10 to 20% of its rate to it. Tessera's start and sign-up often trigger one, bare Fastify's idle
      // start never did, so without this the ratio measured that accident as Tessera's cost (bench/README.md).
      afterWarmup: async () => {
        await bare.collectGarbage()
        await tessera.collectGarbage()
      },
    })
    const peaks = (pid: number, setup: number): Peaks => {
      const serving = peakRssMb(pid)
      return { serving, life: Math.max(setup, serving) }
    }
    const result = {
      runs,
      tessera: peaks(tessera.pid, setupPeaks.tessera),
      bare: peaks(bare.pid, setupPeaks.bare),
    }
    await uncollected.stop()
    await tessera.stop()
    return result
  },

  print({ runs, tessera, bare: barePeaks }, ctx) {
    const { settings } = ctx
    const of = (name: string) => runs.get(name) ?? []
    const bareRuns = of('bare')
    const lines = [
      `Requests: ${settings.connections} connections, ${settings.rounds} rounds of ${settings.durationSeconds} s ` +
        `after a ${settings.warmupSeconds} s warm-up of each route`,
      ...loadTable(
        ROUTES.map(([label, name]) => ({
          label,
          runs: of(name),
          ...(name === 'bare' ? {} : { bare: bareRuns }),
        })),
      ),
      ...LOAD_TABLE_LEGEND,
      '  bare Fastify is sent the same requests as Tessera, Authorization header included; "no token sent" is the',
      '  same server without it: what reading a token costs a server that does nothing with it.',
      '  After the warm-up, bare Fastify and Tessera are each given four full collections while idle, as V8 gives any',
      '  long-running server; "never collected" is a second bare Fastify spared them (bench/README.md).',
      `  peak RSS serving the rounds: Tessera ${mb(tessera.serving)}, bare Fastify ${mb(barePeaks.serving)}; over ` +
        `each process's life, Tessera's sign-up included: ${mb(tessera.life)} and ${mb(barePeaks.life)}.`,
      '',
    ]

    const signature = of('signature-only')
    const verify = of('verify-only')
    const cost = roundRatios(verify, signature, rps)
    const p99Cost = roundRatios(verify, signature, p99Of)
    lines.push(
      'Cost of the revocation check: verify-only (signature, then the session and user state) / signature-only',
      ...table(
        ['signature req/s', 'verify req/s', 'req/s', 'range', 'p99', 'range'],
        [
          [
            num(combine(signature).requestsPerSecond),
            num(combine(verify).requestsPerSecond),
            ratio(cost.median),
            range(cost),
            ratio(p99Cost.median),
            range(p99Cost),
          ],
        ],
      ),
      '  0.95x req/s: the check (and the auth hook that runs it) makes a request 5% slower; p99 above 1x: it adds latency.',
      '',
    )

    const bare = combine(bareRuns)
    const target = (name: string, label: string, limit: number): TargetRow => ({
      name: `${label} req/s vs bare Fastify`,
      measured: `${num(combine(of(name)).requestsPerSecond)}/s`,
      baseline: `${num(bare.requestsPerSecond)}/s`,
      value: roundRatios(of(name), bareRuns, rps).median,
      range: roundRatios(of(name), bareRuns, rps),
      target: { op: '>=', limit, unit: 'x' },
    })
    // Issue 19's targets: the verify-only route and GET /auth/me near bare Fastify, and the memory of a small service.
    const targets: TargetRow[] = [
      target('verify-only', 'verify-only', 0.85),
      target('GET /auth/me', 'GET /auth/me', 0.7),
      {
        name: 'Tessera peak RSS serving requests vs bare Fastify',
        measured: mb(tessera.serving),
        baseline: mb(barePeaks.serving),
        value: tessera.serving / barePeaks.serving,
        target: { op: '<=', limit: 1.25, unit: 'x' },
      },
    ]
    const notes = ROUTES.flatMap(([, name]) => runNotes(name, of(name), ctx.wrk.threads))
    if (bare.serverMainThreadCpu < 90) {
      notes.push(
        `bare Fastify's event loop was busy only ${Math.round(bare.serverMainThreadCpu)}% of the time: the load ` +
          'generator, not the server, set its rate, so the ratios against it flatter Tessera.',
      )
    }
    return { lines, targets, notes }
  },
})
