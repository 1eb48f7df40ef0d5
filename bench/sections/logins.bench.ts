// Logins: the hash ceiling (server cores / seconds per argon2id hash, timed in a process pinned to the server
// cores), a sweep of POST /auth/login at 1, 2 and 4 connections per server core, and GET /auth/me at a fixed
// rate, alternately on an idle server and during a login storm, on one Tessera process.
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Context, defineSection, setting } from '../lib/context.ts'
import { peakRssMb, rssMb, type ServerProcess, spawnPinned, startServer } from '../lib/processes.ts'
import { waitForQuiet } from '../lib/quiet.ts'
import { mb, ms, num, pct, range, ratio, runNotes, type TargetRow, table } from '../lib/report.ts'
import { median, p99Of, roundRatios } from '../lib/rounds.ts'
import { type Credentials, signUp, tesseraConfig } from '../lib/tessera.ts'
import { type LoadOptions, type LoadResult, runLoad } from '../lib/wrk.ts'

const loginStepSeconds = setting('BENCH_LOGIN_DURATION', 5)
const probeRate = setting('BENCH_PROBE_RATE', 200)
const probeConnections = setting('BENCH_PROBE_CONNECTIONS', 10)

type Hashing = { samples: number; secondsPerHash: number; parallelHashesPerSecond: number }
type Step = { connections: number; result: LoadResult }
type ProbeRound = { idle: LoadResult; storm: LoadResult; logins: LoadResult }
type Result = {
  argon2: string
  hashing: Hashing
  steps: Step[]
  best: Step
  /** The same sweep on bare Fastify's login (servers/bare-login-server.ts): the floor. */
  bareSteps: Step[]
  bareBest: Step
  probe: ProbeRound[]
  /** RSS after serving GET /auth/me, before the first login of the section; then the peak over the section. */
  servingMb: number
  peakMb: number
  argon2MemoryMb: number
}

/** argon2id timed in a process of its own on the server cores, while the servers are idle. */
async function timeHashing(ctx: Context, params: unknown): Promise<Hashing> {
  const file = join(import.meta.dirname, '..', 'servers', 'hash-timer.ts')
  const child = spawnPinned(
    ctx.settings.serverCpus,
    file,
    [JSON.stringify(params), String(ctx.settings.serverCores)],
    [],
    false,
  )
  let stdout = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk
  })
  const code = await new Promise((resolve, reject) => child.once('error', reject).once('exit', resolve))
  if (code !== 0) throw new Error(`the hash timer exited with ${code}`)
  return JSON.parse(stdout) as Hashing
}

export default defineSection<Result>({
  name: 'logins',
  description:
    'logins/s beside the hash ceiling, and the p99 of GET /auth/me at a fixed rate in a login storm',

  async run(ctx) {
    const { settings } = ctx
    const { argon2 } = tesseraConfig(ctx.tempDir)
    await waitForQuiet()
    const hashing = await timeHashing(ctx, argon2)
    const tessera = await ctx.startTessera('Tessera, logins')
    const { credentials, headers } = await signUp(tessera)
    // What the process holds serving GET /auth/me, before the logins: the sign-up's one hash has long ended, and
    // argon2's working memory (an mmap of m KiB) is returned when a hash ends, so RSS now is the serving memory.
    await runLoad(ctx.wrk, {
      server: tessera,
      path: '/auth/me',
      headers,
      connections: settings.connections,
      durationSeconds: Math.min(settings.warmupSeconds, 2),
    })
    const servingMb = rssMb(tessera.pid)
    const login = (
      connections: number,
      seconds: number,
      user: Credentials = credentials,
      server: ServerProcess = tessera,
    ): LoadOptions => ({
      server,
      path: '/auth/login',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
      connections,
      durationSeconds: seconds,
      countStatuses: true,
    })
    const cores = settings.serverCores
    const sweep = async (server: ServerProcess) => {
      await runLoad(ctx.wrk, login(2 * cores, Math.min(settings.warmupSeconds, 2), credentials, server))
      const steps: Step[] = []
      for (const n of [...new Set([cores, 2 * cores, 4 * cores])]) {
        await waitForQuiet()
        steps.push({
          connections: n,
          result: await runLoad(ctx.wrk, login(n, loginStepSeconds, credentials, server)),
        })
      }
      const best = steps.reduce((a, b) => (b.result.requestsPerSecond > a.result.requestsPerSecond ? b : a))
      return { steps, best }
    }
    const { steps, best } = await sweep(tessera)

    // The storm starts a second before the probe and ends a second after it, so the probe sees only the storm.
    const probe: LoadOptions = {
      server: tessera,
      path: '/auth/me',
      headers,
      connections: probeConnections,
      ratePerSecond: probeRate,
      durationSeconds: settings.durationSeconds,
    }
    const rounds: ProbeRound[] = []
    for (let round = 0; round < settings.rounds; round++) {
      await waitForQuiet()
      const idle = await runLoad(ctx.wrk, probe)
      const logins = runLoad(ctx.wrk, login(best.connections, settings.durationSeconds + 2))
      await sleep(1_000)
      const storm = await runLoad(ctx.wrk, probe)
      rounds.push({ idle, storm, logins: await logins })
    }
    const peakMb = peakRssMb(tessera.pid)
    await tessera.stop()

    // The floor: bare Fastify's login, the same hash and as many at once, swept alike once Tessera has stopped.
    const bareLogin = await startServer("bare Fastify's login", ctx.bareLoginFile, {
      cpus: settings.serverCpus,
      start: { params: argon2, slots: cores, password: credentials.password },
    })
    let floor: Awaited<ReturnType<typeof sweep>>
    try {
      floor = await sweep(bareLogin)
    } finally {
      await bareLogin.stop()
    }
    const argon2Text = `argon2id m=${argon2.memoryKib} KiB t=${argon2.iterations} p=${argon2.parallelism}`
    return {
      argon2: argon2Text,
      hashing,
      steps,
      best,
      bareSteps: floor.steps,
      bareBest: floor.best,
      probe: rounds,
      servingMb,
      peakMb,
      argon2MemoryMb: argon2.memoryKib / 1024,
    }
  },

  print(r, ctx) {
    const cores = ctx.settings.serverCores
    const ceiling = cores / r.hashing.secondsPerHash
    const lines = [
      `Password hashing (${r.argon2}, in a process of its own on the server cores, servers idle)`,
      `  one at a time: ${ms(r.hashing.secondsPerHash * 1000)} ms per hash (median of ${r.hashing.samples}) -> ` +
        `ceiling = ${cores} server core(s) / ${num(r.hashing.secondsPerHash, 4)} s = ${num(ceiling, 1)} logins/s`,
      `  ${cores} at a time: ${num(r.hashing.parallelHashesPerSecond, 1)} hashes/s = ` +
        `${ratio(r.hashing.parallelHashesPerSecond / ceiling)} the ceiling`,
      '',
      `Logins (POST /auth/login, correct password, ${loginStepSeconds} s per step): Tessera, then bare Fastify's login`,
      ...table(
        [
          'server',
          'connections',
          'logins/s',
          'vs ceiling',
          'p50 ms',
          'p99 ms',
          'server CPU',
          'event loop',
          'wrk CPU',
          'others CPU',
        ],
        [
          ...r.steps.map((step) => ['Tessera', step] as const),
          ...r.bareSteps.map((step) => ["bare Fastify's login", step] as const),
        ].map(([server, { connections, result }]) => [
          server,
          String(connections),
          num(result.requestsPerSecond, 1),
          ratio(result.requestsPerSecond / ceiling),
          ms(result.p50),
          ms(result.p99),
          pct(result.serverCpu),
          pct(result.serverMainThreadCpu),
          pct(result.loadCpu),
          pct(result.otherCpu),
        ]),
      ),
      `  bare Fastify's login: one route checking the password against an argon2id hash of the same parameters,`,
      `  ${cores} at a time like Tessera's hash queue, answering a fixed token (servers/bare-login-server.ts): what`,
      `  Node and Fastify take from a login. Its best, ${num(r.bareBest.result.requestsPerSecond, 1)}/s, is ` +
        `${ratio(r.bareBest.result.requestsPerSecond / r.hashing.parallelHashesPerSecond)} the hash rate; ` +
        `Tessera's best is ${ratio(r.best.result.requestsPerSecond / r.bareBest.result.requestsPerSecond)} of it.`,
      '',
    ]

    const med = (pick: (round: ProbeRound) => number) => median(r.probe.map(pick))
    const stormP99 = roundRatios(
      r.probe.map((round) => round.storm),
      r.probe.map((round) => round.idle),
      p99Of,
    )
    const row = (label: string, pick: (round: ProbeRound) => LoadResult) => [
      label,
      num(med((round) => pick(round).requestsPerSecond)),
      ms(med((round) => pick(round).p50)),
      ms(med((round) => pick(round).p99)),
      r.probe.map((round) => ms(pick(round).p99)).join(' '),
      pct(med((round) => pick(round).serverCpu)),
    ]
    lines.push(
      `GET /auth/me at ${probeRate} req/s on ${probeConnections} connections (each waits 0.5-1.5x its share of a ` +
        `second between requests), ${r.probe.length} rounds: idle, then in a login storm (${r.best.connections} connections)`,
      ...table(
        ['load', 'req/s', 'p50 ms', 'p99 ms', 'p99 per round', 'server CPU'],
        [row('idle server', (round) => round.idle), row('login storm', (round) => round.storm)],
      ),
      `  the storm meanwhile: ${num(
        med((round) => round.logins.requestsPerSecond),
        1,
      )} logins/s; ` + `storm/idle p99 ${ratio(stormP99.median)} (range ${range(stormP99)}, per round)`,
      `  RSS of this Tessera process serving GET /auth/me before any login ${mb(r.servingMb)}; peak over the ` +
        `section ${mb(r.peakMb)}`,
      '',
    )

    // A login storm may add the working memory of the hashes it runs at once (one per server core: the hash
    // queue's slots, availableParallelism() under taskset) and 10 MB, no more.
    const stormAllowanceMb = cores * r.argon2MemoryMb + 10
    const targets: TargetRow[] = [
      {
        name: `logins/s (best of ${r.steps.length}) vs ${cores} hash(es) at a time`,
        measured: `${num(r.best.result.requestsPerSecond, 1)}/s`,
        baseline: `${num(r.hashing.parallelHashesPerSecond, 1)}/s`,
        value: r.best.result.requestsPerSecond / r.hashing.parallelHashesPerSecond,
        target: { op: '>=', limit: 0.9, unit: 'x' },
      },
      {
        name: 'GET /auth/me p99 in login storm vs idle',
        measured: `${ms(med((round) => round.storm.p99))} ms`,
        baseline: `${ms(med((round) => round.idle.p99))} ms`,
        value: stormP99.median,
        range: stormP99,
        target: { op: '<=', limit: 2, unit: 'x' },
      },
      {
        name: `RSS added by logins (allowed: ${cores} x ${num(r.argon2MemoryMb)} MB argon2 + 10 MB)`,
        measured: `${mb(r.peakMb - r.servingMb)} added`,
        baseline: `${mb(r.servingMb)} serving, ${mb(r.peakMb)} peak`,
        value: r.peakMb - r.servingMb,
        target: { op: '<=', limit: stormAllowanceMb, unit: 'MB' },
      },
    ]
    const loadCores = ctx.wrk.threads
    const notes = [
      ...r.steps.flatMap(({ connections, result }) =>
        runNotes(`logins, ${connections} connections`, [result], loadCores),
      ),
      ...r.bareSteps.flatMap(({ connections, result }) =>
        runNotes(`bare Fastify's login, ${connections} connections`, [result], loadCores),
      ),
      ...runNotes(
        'the /auth/me probe, idle',
        r.probe.map((round) => round.idle),
        loadCores,
      ),
      ...runNotes(
        'the /auth/me probe, storm',
        r.probe.map((round) => round.storm),
        loadCores,
      ),
      ...runNotes(
        'the login storm',
        r.probe.map((round) => round.logins),
        loadCores,
      ),
    ]
    return { lines, targets, notes }
  },
})
