// The bench's printed report: every measurement in aligned tables, the verdict against each target of the issue,
// and notes on anything that makes a number suspect (failed requests, other load on the machine).
import os from 'node:os'
import type { Config } from '../src/config/load-config.ts'
import { VERIFIED_TOKEN_CACHE_SIZE } from './chains.ts'
import { combine, type LoadResult, median } from './load.ts'
import { collectNotes } from './notes.ts'
import type { Memory } from './processes.ts'
import { mb, ms, num, pct, ratio, type Target, type TargetRow, table, targetTable } from './table.ts'

/** The parts of the bench that BENCH_SKIP can leave out. */
export const SECTIONS = ['refresh', 'logins', 'cache-off', 'postgres', 'keys', 'distinct', 'workers'] as const
export type Section = (typeof SECTIONS)[number]

/** The PostgreSQL section measures each of these on each backend, in the same rounds. */
export const BACKENDS = ['SQLite', 'PostgreSQL'] as const
export type Backend = (typeof BACKENDS)[number]
export const BACKEND_MEASUREMENTS = ['GET /auth/me', 'POST /auth/refresh', 'GET /auth/me, cache off'] as const
export type BackendMeasurement = (typeof BACKEND_MEASUREMENTS)[number]
export const backendRunName = (backend: Backend, measurement: BackendMeasurement) =>
  `${backend}: ${measurement}`

/** The workers section runs `tessera serve --workers N` for each of these. */
export const WORKER_COUNTS = [1, 2] as const
export const workersRunName = (count: number) => `${count} ${count === 1 ? 'worker' : 'workers'}`

export type BenchParams = {
  cores: number
  durationSeconds: number
  rounds: number
  warmupSeconds: number
  connections: number
  loginStepSeconds: number
  probeRate: number
  probeConnections: number
  /** Rounds, seconds per run and warm-up seconds of the sections after the requests and the logins. */
  sectionRounds: number
  sectionDurationSeconds: number
  sectionWarmupSeconds: number
  /** Access tokens minted per algorithm for the distinct-token runs. */
  distinctTokens: number
  algorithms: string[]
  skip: Section[]
  /** LOG_LEVEL of the Tessera processes. */
  logLevel: string
  threadpoolSize: string | undefined
  serverExecArgv: string[]
}

export type LoginResults = {
  hashing: { samples: number; secondsPerHash: number; parallelHashesPerSecond: number }
  loginSteps: { connections: number; result: LoadResult }[]
  best: { connections: number; result: LoadResult }
  probeRounds: { idle: LoadResult; storm: LoadResult; logins: LoadResult }[]
}

export type KeyResult = {
  algorithm: string
  /** 'bare', 'same token' and, unless skipped, 'distinct tokens': one result per round. */
  runs: Map<string, LoadResult[]>
  /** The process's peak RSS over its whole life (VmHWM, never reset). */
  peakMb: number
  distinct:
    | {
        tokens: number
        /** Wall time of POST /bench/mint per token: mostly the signature. */
        microsPerToken: number
        /** Responses whose token the server may still have had in its verified-token cache. */
        nearRepeats: number
        responses: number
      }
    | undefined
}

/** A section's runs beside bare Fastify, by route; and the peak RSS of each route's server over its life. */
export type SectionResult = {
  runs: Map<string, LoadResult[]>
  /** Summed over the server's processes. */
  peakMb: Map<string, number>
  /** Each process's own: the server's first (a cluster's primary), then its descendants. */
  processPeaksMb: Map<string, number[]>
}

export type BenchResults = {
  params: BenchParams
  argon2: Config['argon2']
  authStateCacheTtlMs: number
  /** Per route ('bare', 'signature-only', 'verify-only', 'GET /auth/me'), one result per round. */
  requestRuns: Map<string, LoadResult[]>
  /** POST /auth/refresh beside bare ('bare', 'POST /auth/refresh'), on a Tessera process of its own. */
  sessions: { sessions: number; runs: Map<string, LoadResult[]>; peakMb: number } | undefined
  bareMemory: Memory
  /** Tessera's peak RSS in each phase, in order. */
  peaks: [string, Memory][]
  peakResets: boolean
  finalMemory: Memory
  threads: Record<string, number>
  logins: LoginResults | undefined
  /** The revocation routes again, on a Tessera process with AUTH_STATE_CACHE_TTL_MS=0. */
  cacheOff: { runs: Map<string, LoadResult[]>; peakMb: number } | undefined
  /** 'bare' and each backendRunName, one result per round; each run's process's peak RSS over its life. */
  postgres: SectionResult | undefined
  /** DATABASE_POOL_SIZE of the PostgreSQL processes: the default. */
  databasePoolSize: number
  keys: KeyResult[] | undefined
  /** 'bare' and each workersRunName; peak RSS summed over each server's processes (primary and workers). */
  workers: SectionResult | undefined
  /** Sections that failed, with why; the bench went on without them. */
  sectionFailures: string[]
  elapsedSeconds: number
}

const TARGETS = {
  verifyOnly: { op: '>=', limit: 0.8, unit: 'x' },
  me: { op: '>=', limit: 0.6, unit: 'x' },
  logins: { op: '>=', limit: 0.95, unit: 'x' },
  stormP99: { op: '<=', limit: 2, unit: 'x' },
  peakRss: { op: '<=', limit: 100, unit: 'MB' },
} as const satisfies Record<string, Target>

/** The median of the per-round ratios, and their range. */
export function roundRatios(runs: LoadResult[], baseline: LoadResult[], pick: (run: LoadResult) => number) {
  const ratios = runs.map((run, i) => pick(run) / pick(baseline[i] as LoadResult))
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) }
}

const rps = (run: LoadResult) => run.requestsPerSecond
const p99Of = (run: LoadResult) => run.p99

const range = ({ min, max }: { min: number; max: number }) => `${num(min, 2)}-${num(max, 2)}`

export function printReport(r: BenchResults): void {
  const { params: p, argon2 } = r
  const peakRss = Math.max(...r.peaks.map(([, m]) => m.peakMb))
  const peakOf = (phase: string) => r.peaks.find(([name]) => name === phase)?.[1].peakMb ?? Number.NaN
  const pool = r.threads['libuv-worker'] ?? 0
  const runsOf = (name: string) => r.requestRuns.get(name) ?? []
  const bareRuns = runsOf('bare')
  const bare = combine(bareRuns)
  const out: string[] = []
  const say = (line = '') => out.push(line)
  const argon2Text = `argon2id m=${argon2.memoryKib} KiB t=${argon2.iterations} p=${argon2.parallelism}`
  const sectionText = `${p.sectionRounds} rounds of ${p.sectionDurationSeconds} s after a ${p.sectionWarmupSeconds} s warm-up`

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
    `  Tessera  own process, NODE_ENV=production, LOG_LEVEL=${p.logLevel}, SQLite file in ${os.tmpdir()}, ${argon2Text}, ` +
      `${pool} libuv threads (UV_THREADPOOL_SIZE ${p.threadpoolSize ?? 'unset'}), HS256 with JWT_SECRET, ` +
      `AUTH_STATE_CACHE_TTL_MS ${r.authStateCacheTtlMs}` +
      (p.serverExecArgv.length ? `, node ${p.serverExecArgv.join(' ')}` : ''),
  )
  say(
    `  sections sessions, cache off, PostgreSQL, signing algorithms, workers: ${sectionText}, beside bare ` +
      'Fastify, in turn',
  )
  if (p.skip.length > 0) say(`  skipped  ${p.skip.join(', ')} (BENCH_SKIP)`)
  say(`  time     ${num(r.elapsedSeconds)} s in all`)
  say()

  say(`Requests (${p.connections} connections)`)
  const routes: [string, string, number][] = [
    ['bare Fastify', 'bare', r.bareMemory.peakMb],
    ['bare Fastify, no token sent', 'bare, no token', r.bareMemory.peakMb],
    ['GET /bench/signature-only', 'signature-only', peakOf('signature-only')],
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
    '  bare Fastify is sent the same requests as Tessera, Authorization header included; the "no token sent" row',
  )
  say(
    '  is the same server without that header: what reading a token costs a server that does nothing with it.',
  )
  say(
    table(
      ['route', 'req/s', 'range', 'p99', 'range', 'peak RSS'],
      routes.slice(1).map(([label, name, rss]) => {
        const throughput = roundRatios(runsOf(name), bareRuns, rps)
        const p99 = roundRatios(runsOf(name), bareRuns, p99Of)
        return [
          label,
          ratio(throughput.median),
          range(throughput),
          ratio(p99.median),
          range(p99),
          ratio(rss / r.bareMemory.peakMb),
        ]
      }),
    ),
  )
  say()

  printRevocationCost(r, say)
  printSessions(r, say)
  printPostgres(r, say)
  if (r.logins) printLogins(r, r.logins, say)
  if (r.keys) printKeys(r, r.keys, say)
  printWorkers(r, say)

  say('Tessera peak RSS by phase (VmHWM, reset between phases)')
  say(
    table(
      ['phase', 'peak RSS'],
      r.peaks.map(([name, m]) => [name, mb(m.peakMb)]),
    ),
  )
  say(`  RSS at the end: ${mb(r.finalMemory.rssMb)}; bare Fastify's peak: ${mb(r.bareMemory.peakMb)}`)
  if (r.sessions) say(`  the sessions process's peak: ${mb(r.sessions.peakMb)}`)
  if (r.cacheOff) say(`  the cache-off process's peak: ${mb(r.cacheOff.peakMb)}`)
  say()

  const verifyOnly = combine(runsOf('verify-only'))
  const me = combine(runsOf('GET /auth/me'))
  const targetRows: TargetRow[] = [
    {
      name: 'verify-only req/s vs bare Fastify',
      measured: `${num(verifyOnly.requestsPerSecond)}/s`,
      baseline: `${num(bare.requestsPerSecond)}/s`,
      value: roundRatios(runsOf('verify-only'), bareRuns, rps).median,
      target: TARGETS.verifyOnly,
    },
    {
      name: 'GET /auth/me req/s vs bare Fastify',
      measured: `${num(me.requestsPerSecond)}/s`,
      baseline: `${num(bare.requestsPerSecond)}/s`,
      value: roundRatios(runsOf('GET /auth/me'), bareRuns, rps).median,
      target: TARGETS.me,
    },
  ]
  if (r.logins) {
    const { best, loginSteps, probeRounds } = r.logins
    const ceiling = p.cores / r.logins.hashing.secondsPerHash
    const idle = combine(probeRounds.map((round) => round.idle))
    const storm = combine(probeRounds.map((round) => round.storm))
    targetRows.push(
      {
        name: `logins/s (best of ${loginSteps.length}) vs hash ceiling`,
        measured: `${num(best.result.requestsPerSecond, 1)}/s`,
        baseline: `${num(ceiling, 1)}/s`,
        value: best.result.requestsPerSecond / ceiling,
        target: TARGETS.logins,
      },
      {
        name: 'GET /auth/me p99 in login storm vs idle',
        measured: `${ms(storm.p99)} ms`,
        baseline: `${ms(idle.p99)} ms`,
        value: storm.p99 / idle.p99,
        target: TARGETS.stormP99,
      },
    )
  }
  targetRows.push({
    name: 'Tessera peak RSS, whole run',
    measured: mb(peakRss),
    baseline: `bare ${mb(r.bareMemory.peakMb)}`,
    value: peakRss,
    target: TARGETS.peakRss,
  })
  say(`Targets (one process${r.logins ? '' : '; logins skipped'})`)
  say(targetTable(targetRows))

  const notes = collectNotes(r, bare, pool)
  if (notes.length > 0) {
    say()
    say('Notes')
    for (const note of notes) say(`  - ${note}`)
  }
  console.log(out.join('\n'))
}

type Say = (line?: string) => void

function printRevocationCost(r: BenchResults, say: Say): void {
  const p = r.params
  say(
    'Cost of the revocation check: verify-only (signature, then the session and user state) / signature-only ' +
      '(signature only),',
  )
  say('median of the per-round ratios; 0.95x means the check makes a request 5% slower')
  const row = (label: string, roundsText: string, runs: Map<string, LoadResult[]>) => {
    const of = (name: string) => runs.get(name) ?? []
    const signature = of('signature-only')
    const verify = of('verify-only')
    const cost = roundRatios(verify, signature, rps)
    const p99 = roundRatios(verify, signature, p99Of)
    const me = roundRatios(of('GET /auth/me'), of('bare'), rps)
    return [
      label,
      roundsText,
      num(combine(signature).requestsPerSecond),
      num(combine(verify).requestsPerSecond),
      ratio(cost.median),
      range(cost),
      ratio(p99.median),
      num(combine(of('GET /auth/me')).requestsPerSecond),
      ratio(me.median),
      range(me),
    ]
  }
  const rows = [row(`on, ${r.authStateCacheTtlMs} ms`, `${p.rounds} x ${p.durationSeconds} s`, r.requestRuns)]
  if (r.cacheOff) {
    rows.push(
      row(
        'off (0: SQLite every request)',
        `${p.sectionRounds} x ${p.sectionDurationSeconds} s`,
        r.cacheOff.runs,
      ),
    )
  }
  say(
    table(
      [
        'revocation state cache',
        'rounds',
        'signature req/s',
        'verify req/s',
        'cost',
        'range',
        'p99 cost',
        '/auth/me req/s',
        'me vs bare',
        'range',
      ],
      rows,
    ),
  )
  say(
    '  "cost" and "p99 cost" are verify-only / signature-only (req/s, p99); "me vs bare" is GET /auth/me / bare Fastify',
  )
  say(
    '  in the same rounds. The cache-on row is the requests above; the cache-off row is a Tessera process of its own.',
  )
  if (!r.cacheOff) {
    say(
      p.skip.includes('cache-off')
        ? '  The cache-off process was skipped (BENCH_SKIP=cache-off).'
        : '  The cache-off process failed: see Notes.',
    )
  }
  say()
}

/** The line that stands for a section missing from the report: skipped, or failed. */
function sayMissing(r: BenchResults, title: string, section: Section, say: Say): void {
  say(
    r.params.skip.includes(section)
      ? `${title}: skipped (BENCH_SKIP=${section})`
      : `${title}: the section failed: see Notes`,
  )
  say()
}

/** A route of a section, for loadTable; its ratios to bare Fastify are taken round by round against `bare`. */
type LoadRow = { label: string; runs: LoadResult[]; bare?: LoadResult[]; peakMb?: number | undefined }

/**
 * One row per route of a section: throughput, latency, the ratios to bare Fastify, and who used the CPU; with a
 * column for the database servers when the runs measured them, and one for peak RSS when the rows have it.
 */
function loadTable(rows: LoadRow[], databaseLabel = 'db CPU'): string {
  const combined = rows.map((row) => combine(row.runs))
  const withDatabase = combined.some((run) => !Number.isNaN(run.databaseCpu))
  const withPeak = rows.some((row) => row.peakMb !== undefined)
  const optional = <T>(present: boolean, cells: T[]) => (present ? cells : [])
  return table(
    [
      'route',
      'req/s',
      'p50 ms',
      'p99 ms',
      'vs bare',
      'range',
      'p99 vs bare',
      'server CPU',
      'event loop',
      ...optional(withDatabase, [databaseLabel]),
      'bench CPU',
      'others CPU',
      ...optional(withPeak, ['peak RSS']),
    ],
    rows.map((row, i) => {
      const run = combined[i] as LoadResult
      const throughput = row.bare && roundRatios(row.runs, row.bare, rps)
      const p99 = row.bare && roundRatios(row.runs, row.bare, p99Of)
      return [
        row.label,
        num(run.requestsPerSecond),
        ms(run.p50),
        ms(run.p99),
        throughput ? ratio(throughput.median) : '-',
        throughput ? range(throughput) : '-',
        p99 ? ratio(p99.median) : '-',
        pct(run.serverCpu),
        pct(run.serverMainThreadCpu),
        ...optional(withDatabase, [Number.isNaN(run.databaseCpu) ? '-' : pct(run.databaseCpu)]),
        pct(run.clientCpu),
        pct(run.otherCpu),
        ...optional(withPeak, [row.peakMb === undefined ? '-' : mb(row.peakMb)]),
      ]
    }),
  )
}

function printSessions(r: BenchResults, say: Say): void {
  const p = r.params
  if (!r.sessions) {
    sayMissing(r, 'Sessions', 'refresh', say)
    return
  }
  const { runs, sessions } = r.sessions
  const bareRuns = runs.get('bare') ?? []
  const refreshRuns = runs.get('POST /auth/refresh') ?? []
  say(
    `Sessions: POST /auth/refresh on a Tessera process of its own, ${sessions} sessions (one per connection), ` +
      `${p.sectionRounds} rounds of ${p.sectionDurationSeconds} s beside bare Fastify`,
  )
  say(
    loadTable([
      { label: 'bare Fastify', runs: bareRuns },
      { label: 'POST /auth/refresh', runs: refreshRuns, bare: bareRuns },
    ]),
  )
  const answered = refreshRuns.reduce((n, run) => n + run.latencies.length, 0)
  const failures = refreshRuns.flatMap((run) => run.failures)
  say('  each request spends the refresh token that the previous response on its connection handed out;')
  say(
    `  ${num(answered)} responses 200 over the measured rounds` +
      (failures.length === 0 ? ', and no other status.' : `; FAILURES: ${failures.join(', ')}.`),
  )
  say()
}

function printPostgres(r: BenchResults, say: Say): void {
  const p = r.params
  if (!r.postgres) {
    sayMissing(r, 'PostgreSQL', 'postgres', say)
    return
  }
  const { runs, peakMb } = r.postgres
  const runsOf = (name: string) => runs.get(name) ?? []
  const bareRuns = runsOf('bare')
  say(
    `SQLite beside PostgreSQL: one Tessera process per backend and measurement, ${p.sectionRounds} rounds of ` +
      `${p.sectionDurationSeconds} s beside bare Fastify`,
  )
  say(
    `  SQLite: a fresh file per process; PostgreSQL: a fresh schema per process, DATABASE_POOL_SIZE ` +
      `${r.databasePoolSize} (the default)`,
  )
  const rows = BACKEND_MEASUREMENTS.flatMap((measurement) =>
    BACKENDS.map((backend): LoadRow => {
      const name = backendRunName(backend, measurement)
      return { label: name, runs: runsOf(name), bare: bareRuns, peakMb: peakMb.get(name) }
    }),
  )
  say(loadTable([{ label: 'bare Fastify', runs: bareRuns }, ...rows], 'postgres CPU'))
  say(
    '  "cache off": AUTH_STATE_CACHE_TTL_MS=0, the session and user read from the database on every request.',
  )
  say(
    '  postgres CPU: every postgres process on the machine (the server and its backends) during the PostgreSQL runs,',
  )
  say('  left out of "others CPU". peak RSS: the whole life of the Tessera process (VmHWM, never reset).')
  say()
  say('PostgreSQL / SQLite in the same rounds (median of the per-round ratios, and their range)')
  say(
    table(
      ['measurement', 'req/s', 'range', 'p99', 'range'],
      BACKEND_MEASUREMENTS.map((measurement) => {
        const sqlite = runsOf(backendRunName('SQLite', measurement))
        const postgres = runsOf(backendRunName('PostgreSQL', measurement))
        const throughput = roundRatios(postgres, sqlite, rps)
        const p99 = roundRatios(postgres, sqlite, p99Of)
        return [measurement, ratio(throughput.median), range(throughput), ratio(p99.median), range(p99)]
      }),
    ),
  )
  say('  req/s below 1x: PostgreSQL serves fewer requests than SQLite; p99 above 1x: it answers later.')
  say()
}

function printWorkers(r: BenchResults, say: Say): void {
  const p = r.params
  if (!r.workers) {
    sayMissing(r, 'Workers', 'workers', say)
    return
  }
  const { runs, peakMb, processPeaksMb } = r.workers
  const runsOf = (name: string) => runs.get(name) ?? []
  const bareRuns = runsOf('bare')
  const names = WORKER_COUNTS.map(workersRunName)
  say(
    `Workers: GET /auth/me on \`tessera serve --workers N\` with PostgreSQL and Redis (a fresh schema and key ` +
      `prefix each), ${p.sectionRounds} rounds of ${p.sectionDurationSeconds} s beside bare Fastify`,
  )
  const rows = names.map(
    (name): LoadRow => ({ label: name, runs: runsOf(name), bare: bareRuns, peakMb: peakMb.get(name) }),
  )
  say(loadTable([{ label: 'bare Fastify', runs: bareRuns }, ...rows], 'postgres+redis CPU'))
  const fewest = names[0] as string
  const most = names[names.length - 1] as string
  const throughput = roundRatios(runsOf(most), runsOf(fewest), rps)
  const p99 = roundRatios(runsOf(most), runsOf(fewest), p99Of)
  say(
    `  ${most} / ${fewest}: req/s ${ratio(throughput.median)} (range ${range(throughput)}), p99 ` +
      `${ratio(p99.median)} (range ${range(p99)}), median of the per-round ratios`,
  )
  for (const name of names) {
    // A cluster: its primary, then its workers. One worker is a lone process, with nothing to break down.
    const [primary = Number.NaN, ...workers] = processPeaksMb.get(name) ?? []
    if (workers.length === 0) continue
    say(
      `  ${name}: peak RSS ${mb(primary)} in the primary, which serves nothing, and ` +
        `${workers.map(mb).join(' + ')} in the workers`,
    )
  }
  const single = combine(runsOf(fewest))
  const used =
    single.serverCpu + single.clientCpu + (Number.isNaN(single.databaseCpu) ? 0 : single.databaseCpu)
  say(
    `  os.availableParallelism() is ${p.cores}: the workers, PostgreSQL, Redis and autocannon share these cores, ` +
      `and with ${fewest} they used ${pct(used)} of ${pct(p.cores * 100)} already;`,
  )
  say('  so the gain of more workers is bounded by the cores left over, not by Tessera.')
  say(
    '  server CPU, event loop and peak RSS are summed over the primary and its workers (one process for 1 worker):',
  )
  say(
    '  event loop above 100% means several busy main threads; each process counts its shared pages (Node itself)',
  )
  say('  in its peak RSS, and the sum of the peaks is an upper bound of their peak together.')
  say()
}

function printLogins(r: BenchResults, l: LoginResults, say: Say): void {
  const { params: p, argon2 } = r
  const argon2Text = `argon2id m=${argon2.memoryKib} KiB t=${argon2.iterations} p=${argon2.parallelism}`
  const ceiling = p.cores / l.hashing.secondsPerHash
  say(`Password hashing (${argon2Text}, in the bench process while the servers were idle)`)
  say(
    `  one at a time: ${ms(l.hashing.secondsPerHash * 1000)} ms per hash (median of ${l.hashing.samples}) -> ceiling = ${p.cores} cores / ` +
      `${num(l.hashing.secondsPerHash, 4)} s = ${num(ceiling, 1)} logins/s`,
  )
  say(
    `  ${p.cores} at a time: ${num(l.hashing.parallelHashesPerSecond, 1)} hashes/s = ` +
      `${ratio(l.hashing.parallelHashesPerSecond / ceiling)} the ceiling (what these cores sustain together)`,
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
      l.loginSteps.map(({ connections, result }) => [
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
    `  best: ${num(l.best.result.requestsPerSecond, 1)} logins/s = ` +
      `${ratio(l.best.result.requestsPerSecond / l.hashing.parallelHashesPerSecond)} the ${p.cores}-at-a-time hash rate above`,
  )
  say()

  const idle = combine(l.probeRounds.map((round) => round.idle))
  const storm = combine(l.probeRounds.map((round) => round.storm))
  const stormLogins = combine(l.probeRounds.map((round) => round.logins))
  say(
    `GET /auth/me at a fixed ${p.probeRate} req/s on ${p.probeConnections} connections, ${p.rounds} rounds of ` +
      `${p.durationSeconds} s idle then ${p.durationSeconds} s in a login storm (${l.best.connections} connections)`,
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
  const p99s = (pick: (round: LoginResults['probeRounds'][number]) => LoadResult) =>
    l.probeRounds.map((round) => ms(pick(round).p99)).join(' ')
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
}

function printKeys(r: BenchResults, keys: KeyResult[], say: Say): void {
  const p = r.params
  const distinct = keys.some((key) => key.distinct)
  say(
    `Signing algorithms: GET /bench/verify-only, one Tessera process per algorithm, in turn, ${p.sectionRounds} ` +
      `rounds of ${p.sectionDurationSeconds} s beside bare Fastify`,
  )
  const column = (key: KeyResult, name: string) => {
    const runs = key.runs.get(name) ?? []
    if (runs.length === 0) return ['-', '-', '-']
    const bareRuns = key.runs.get('bare') ?? []
    return [
      num(combine(runs).requestsPerSecond),
      ratio(roundRatios(runs, bareRuns, rps).median),
      ms(combine(runs).p99),
    ]
  }
  say(
    table(
      [
        'algorithm',
        'same token req/s',
        'vs bare',
        'p99 ms',
        ...(distinct ? ['distinct tokens req/s', 'vs bare', 'p99 ms', 'mint us/token'] : []),
        'bare req/s',
        'peak RSS',
      ],
      keys.map((key) => [
        key.algorithm,
        ...column(key, 'same token'),
        ...(distinct
          ? [...column(key, 'distinct tokens'), key.distinct ? num(key.distinct.microsPerToken, 1) : '-']
          : []),
        num(combine(key.runs.get('bare') ?? []).requestsPerSecond),
        mb(key.peakMb),
      ]),
    ),
  )
  say(
    '  same token: one token on every request; after the first, the verified-token cache skips its decoding and',
  )
  say('  signature check (the time checks and the revocation check remain).')
  if (distinct) {
    const tokens = keys.find((key) => key.distinct)?.distinct?.tokens ?? 0
    say(
      `  distinct tokens: ${num(tokens)} tokens minted per algorithm (POST /bench/mint) and cycled, so that none comes back`,
    )
    say(
      `  within the ${num(VERIFIED_TOKEN_CACHE_SIZE)} verifications the cache remembers: every request decodes and checks ` +
        'the signature.',
    )
    say('  mint us/token: wall time of minting per token, in batches over HTTP: mostly the signature.')
  } else {
    say('  distinct tokens: skipped (BENCH_SKIP=distinct): only the cached path was measured.')
  }
  say(
    '  peak RSS: the whole life of that process (VmHWM, never reset), with its cache full of distinct tokens.',
  )
  say()
}
