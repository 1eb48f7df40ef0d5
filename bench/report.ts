// The bench's printed report: every measurement in aligned tables, the verdict against each target of the issue,
// and notes on anything that makes a number suspect (failed requests, other load on the machine).
import os from 'node:os'
import type { Config } from '../src/config/load-config.ts'
import { combine, type LoadResult, median } from './load.ts'
import { collectNotes } from './notes.ts'
import type { Memory } from './processes.ts'
import { mb, ms, num, pct, ratio, type Target, table, targetTable } from './table.ts'

export type BenchParams = {
  cores: number
  durationSeconds: number
  rounds: number
  warmupSeconds: number
  connections: number
  loginStepSeconds: number
  probeRate: number
  probeConnections: number
  threadpoolSize: string | undefined
  serverExecArgv: string[]
}

export type BenchResults = {
  params: BenchParams
  argon2: Config['argon2']
  hashing: { samples: number; secondsPerHash: number; parallelHashesPerSecond: number }
  /** Per route ('bare', 'verify-only', 'GET /auth/me'), one result per round. */
  requestRuns: Map<string, LoadResult[]>
  bareMemory: Memory
  /** Tessera's peak RSS in each phase, in order. */
  peaks: [string, Memory][]
  peakResets: boolean
  finalMemory: Memory
  threads: Record<string, number>
  loginSteps: { connections: number; result: LoadResult }[]
  best: { connections: number; result: LoadResult }
  probeRounds: { idle: LoadResult; storm: LoadResult; logins: LoadResult }[]
}

const TARGETS = {
  verifyOnly: { op: '>=', limit: 0.8, unit: 'x' },
  me: { op: '>=', limit: 0.6, unit: 'x' },
  logins: { op: '>=', limit: 0.95, unit: 'x' },
  stormP99: { op: '<=', limit: 2, unit: 'x' },
  peakRss: { op: '<=', limit: 100, unit: 'MB' },
} as const satisfies Record<string, Target>

/** The median of the per-round ratios, and their range. */
function roundRatios(runs: LoadResult[], baseline: LoadResult[], pick: (run: LoadResult) => number) {
  const ratios = runs.map((run, i) => pick(run) / pick(baseline[i] as LoadResult))
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) }
}

const range = ({ min, max }: { min: number; max: number }) => `${num(min, 2)}-${num(max, 2)}`

export function printReport(r: BenchResults): void {
  const { params: p, argon2 } = r
  const ceiling = p.cores / r.hashing.secondsPerHash
  const peakRss = Math.max(...r.peaks.map(([, m]) => m.peakMb))
  const peakOf = (phase: string) => r.peaks.find(([name]) => name === phase)?.[1].peakMb ?? Number.NaN
  const pool = r.threads['libuv-worker'] ?? 0
  const runsOf = (name: string) => r.requestRuns.get(name) ?? []
  const bareRuns = runsOf('bare')
  const bare = combine(bareRuns)
  const out: string[] = []
  const say = (line = '') => out.push(line)
  const argon2Text = `argon2id m=${argon2.memoryKib} KiB t=${argon2.iterations} p=${argon2.parallelism}`

  say('Tessera bench: a report, not a test')
  say(
    `  machine  ${p.cores} cores (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${num(os.totalmem() / 2 ** 30, 1)} GiB, ` +
      `${os.type()} ${os.release()} ${os.arch()}, Node ${process.version}`,
  )
  say(
    `  runs     ${p.connections} connections; ${p.rounds} rounds of ${p.durationSeconds} s per route after a ` +
      `${p.warmupSeconds} s warm-up; medians of the rounds, percentiles over all their responses`,
  )
  say(
    `  Tessera  own process, NODE_ENV=production, LOG_LEVEL=silent, SQLite file in ${os.tmpdir()}, ${argon2Text}, ` +
      `${pool} libuv threads (UV_THREADPOOL_SIZE ${p.threadpoolSize ?? 'unset'})` +
      (p.serverExecArgv.length ? `, node ${p.serverExecArgv.join(' ')}` : ''),
  )
  say()

  say(`Requests (${p.connections} connections)`)
  const routes: [string, string, number][] = [
    ['bare Fastify', 'bare', r.bareMemory.peakMb],
    ['GET /bench/verify-only', 'verify-only', peakOf('verify-only')],
    ['GET /auth/me', 'GET /auth/me', peakOf('GET /auth/me')],
  ]
  say(
    table(
      [
        'route',
        'req/s',
        'p50 ms',
        'p99 ms',
        'peak RSS',
        'server CPU',
        'event loop',
        'bench CPU',
        'others CPU',
      ],
      routes.map(([label, name, rss]) => {
        const run = combine(runsOf(name))
        const cells = [num(run.requestsPerSecond), ms(run.p50), ms(run.p99), mb(rss)]
        return [
          label,
          ...cells,
          pct(run.serverCpu),
          pct(run.serverMainThreadCpu),
          pct(run.clientCpu),
          pct(run.otherCpu),
        ]
      }),
    ),
  )
  say(
    '  CPU in % of one core: the server process, its main thread (event loop), this process (autocannon), and',
  )
  say('  every other process on the machine (the worst round).')
  say()
  say('Beside bare Fastify (median of the per-round ratios, and their range)')
  say(
    table(
      ['route', 'req/s', 'range', 'p99', 'range', 'peak RSS'],
      routes.slice(1).map(([label, name, rss]) => {
        const rps = roundRatios(runsOf(name), bareRuns, (run) => run.requestsPerSecond)
        const p99 = roundRatios(runsOf(name), bareRuns, (run) => run.p99)
        return [
          label,
          ratio(rps.median),
          range(rps),
          ratio(p99.median),
          range(p99),
          ratio(rss / r.bareMemory.peakMb),
        ]
      }),
    ),
  )
  say()

  say(`Password hashing (${argon2Text}, in the bench process while the servers were idle)`)
  say(
    `  one at a time: ${ms(r.hashing.secondsPerHash * 1000)} ms per hash (median of ${r.hashing.samples}) -> ceiling = ${p.cores} cores / ` +
      `${num(r.hashing.secondsPerHash, 4)} s = ${num(ceiling, 1)} logins/s`,
  )
  say(
    `  ${p.cores} at a time: ${num(r.hashing.parallelHashesPerSecond, 1)} hashes/s = ` +
      `${ratio(r.hashing.parallelHashesPerSecond / ceiling)} the ceiling (what these cores sustain together)`,
  )
  say()

  say(`Logins (POST /auth/login, correct password, ${p.loginStepSeconds} s per step)`)
  say(
    table(
      [
        'connections',
        'logins/s',
        'vs ceiling',
        'p50 ms',
        'p99 ms',
        'server CPU',
        'event loop',
        'bench CPU',
        'others CPU',
      ],
      r.loginSteps.map(({ connections, result }) => [
        String(connections),
        num(result.requestsPerSecond, 1),
        ratio(result.requestsPerSecond / ceiling),
        ms(result.p50),
        ms(result.p99),
        pct(result.serverCpu),
        pct(result.serverMainThreadCpu),
        pct(result.clientCpu),
        pct(result.otherCpu),
      ]),
    ),
  )
  say(
    `  best: ${num(r.best.result.requestsPerSecond, 1)} logins/s = ` +
      `${ratio(r.best.result.requestsPerSecond / r.hashing.parallelHashesPerSecond)} the ${p.cores}-at-a-time hash rate above`,
  )
  say()

  const idle = combine(r.probeRounds.map((round) => round.idle))
  const storm = combine(r.probeRounds.map((round) => round.storm))
  const stormLogins = combine(r.probeRounds.map((round) => round.logins))
  say(
    `GET /auth/me at a fixed ${p.probeRate} req/s on ${p.probeConnections} connections, ${p.rounds} rounds of ` +
      `${p.durationSeconds} s idle then ${p.durationSeconds} s in a login storm (${r.best.connections} connections)`,
  )
  const probeRow = (label: string, run: LoadResult, perRound: string) => [
    label,
    num(run.requestsPerSecond),
    ms(run.p50),
    ms(run.p99),
    perRound,
    pct(run.serverCpu),
    pct(run.serverMainThreadCpu),
    pct(run.otherCpu),
  ]
  const p99s = (pick: (round: BenchResults['probeRounds'][number]) => LoadResult) =>
    r.probeRounds.map((round) => ms(pick(round).p99)).join(' ')
  say(
    table(
      ['load', 'req/s', 'p50 ms', 'p99 ms', 'p99 per round', 'server CPU', 'event loop', 'others CPU'],
      [
        probeRow(
          'idle server',
          idle,
          p99s((round) => round.idle),
        ),
        probeRow(
          'login storm',
          storm,
          p99s((round) => round.storm),
        ),
      ],
    ),
  )
  say(
    `  the storm meanwhile: ${num(stormLogins.requestsPerSecond, 1)} logins/s ` +
      `(${ratio(stormLogins.requestsPerSecond / ceiling)} the ceiling), p99 ${ms(stormLogins.p99)} ms`,
  )
  say()

  say('Tessera peak RSS by phase (VmHWM, reset between phases)')
  say(
    table(
      ['phase', 'peak RSS'],
      r.peaks.map(([name, m]) => [name, mb(m.peakMb)]),
    ),
  )
  say(`  RSS at the end: ${mb(r.finalMemory.rssMb)}; bare Fastify's peak: ${mb(r.bareMemory.peakMb)}`)
  say()

  const verifyOnly = combine(runsOf('verify-only'))
  const me = combine(runsOf('GET /auth/me'))
  say('Targets (one process)')
  say(
    targetTable([
      {
        name: 'verify-only req/s vs bare Fastify',
        measured: `${num(verifyOnly.requestsPerSecond)}/s`,
        baseline: `${num(bare.requestsPerSecond)}/s`,
        value: roundRatios(runsOf('verify-only'), bareRuns, (run) => run.requestsPerSecond).median,
        target: TARGETS.verifyOnly,
      },
      {
        name: 'GET /auth/me req/s vs bare Fastify',
        measured: `${num(me.requestsPerSecond)}/s`,
        baseline: `${num(bare.requestsPerSecond)}/s`,
        value: roundRatios(runsOf('GET /auth/me'), bareRuns, (run) => run.requestsPerSecond).median,
        target: TARGETS.me,
      },
      {
        name: `logins/s (best of ${r.loginSteps.length}) vs hash ceiling`,
        measured: `${num(r.best.result.requestsPerSecond, 1)}/s`,
        baseline: `${num(ceiling, 1)}/s`,
        value: r.best.result.requestsPerSecond / ceiling,
        target: TARGETS.logins,
      },
      {
        name: 'GET /auth/me p99 in login storm vs idle',
        measured: `${ms(storm.p99)} ms`,
        baseline: `${ms(idle.p99)} ms`,
        value: storm.p99 / idle.p99,
        target: TARGETS.stormP99,
      },
      {
        name: 'Tessera peak RSS, whole run',
        measured: mb(peakRss),
        baseline: `bare ${mb(r.bareMemory.peakMb)}`,
        value: peakRss,
        target: TARGETS.peakRss,
      },
    ]),
  )

  const notes = collectNotes(r, bare, pool)
  if (notes.length > 0) {
    say()
    say('Notes')
    for (const note of notes) say(`  - ${note}`)
  }
  console.log(out.join('\n'))
}
