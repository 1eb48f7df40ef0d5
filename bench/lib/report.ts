// Text formatting for the bench report: aligned tables, numbers with units, a section's load table beside bare
// Fastify, the verdict against a target, and the notes that make a run's numbers suspect.
import { OTHERS_CPU_LIMIT } from './quiet.ts'
import { combine, p99Of, type RatioStats, roundRatios, rps } from './rounds.ts'
import type { LoadResult } from './wrk.ts'

export type Target = { op: '>=' | '<='; limit: number; unit: 'x' | 'MB' | 'ms' }

export type TargetRow = {
  name: string
  measured: string
  baseline: string
  /** The number compared with the target: a ratio, or megabytes. */
  value: number
  /** The range of the per-round ratios behind `value`, when it is their median. */
  range?: RatioStats
  target: Target
}

export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)))
  // The first column is text and aligned left; the others are numbers and aligned right.
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].map((l) => `  ${l}`)
}

export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export const ms = (value: number) => num(value, value < 10 ? 2 : 1)
export const mb = (value: number) => `${num(value, 1)} MB`
export const pct = (value: number) => `${num(value)}%`
export const ratio = (value: number) => `${num(value, 2)}x`
export const range = ({ min, max }: RatioStats) => `${num(min, 2)}-${num(max, 2)}`

export function passes({ value, target }: Pick<TargetRow, 'value' | 'target'>): boolean {
  if (!Number.isFinite(value)) return false
  return target.op === '>=' ? value >= target.limit : value <= target.limit
}

/** The ratio, with a third decimal when two would make a miss look like the limit itself (0.797 as 0.80x). */
function ratioBeside(row: TargetRow): string {
  const text = ratio(row.value)
  return text === ratio(row.target.limit) && !passes(row) ? `${num(row.value, 3)}x` : text
}

function limitText({ limit, unit }: Target): string {
  if (unit === 'x') return ratio(limit)
  return unit === 'MB' ? mb(limit) : `${num(limit)} ms`
}

export function targetTable(rows: TargetRow[]): string[] {
  return table(
    ['measurement', 'measured', 'baseline', 'ratio', 'range', 'target', 'result'],
    rows.map((row) => [
      row.name,
      row.measured,
      row.baseline,
      row.target.unit === 'x' ? ratioBeside(row) : '-',
      row.range ? range(row.range) : '-',
      `${row.target.op} ${limitText(row.target)}`,
      passes(row) ? 'PASS' : 'MISS',
    ]),
  )
}

/** A row of loadTable; its ratios to bare Fastify are taken round by round against `bare`. */
export type LoadRow = { label: string; runs: LoadResult[]; bare?: LoadResult[]; peakMb?: number }

/**
 * One row per route: throughput, latency, the ratios to bare Fastify (median of the rounds, and range), and who
 * used the CPU; a column for the database servers when the runs measured them, and one for peak RSS.
 */
export function loadTable(rows: LoadRow[], databaseLabel = 'db CPU'): string[] {
  const combined = rows.map((row) => combine(row.runs))
  const withDatabase = combined.some((run) => !Number.isNaN(run.databaseCpu))
  const withPeak = rows.some((row) => row.peakMb !== undefined)
  const optional = (present: boolean, cells: string[]) => (present ? cells : [])
  return table(
    [
      'route',
      'req/s',
      'p50 ms',
      'p99 ms',
      'vs bare',
      'range',
      'p99 vs bare',
      'range',
      'server CPU',
      'event loop',
      ...optional(withDatabase, [databaseLabel]),
      'wrk CPU',
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
        p99 ? range(p99) : '-',
        pct(run.serverCpu),
        pct(run.serverMainThreadCpu),
        ...optional(withDatabase, [Number.isNaN(run.databaseCpu) ? '-' : pct(run.databaseCpu)]),
        pct(run.loadCpu),
        pct(run.otherCpu),
        ...optional(withPeak, [row.peakMb === undefined ? '-' : mb(row.peakMb)]),
      ]
    }),
  )
}

/** The legend under every load table. */
export const LOAD_TABLE_LEGEND = [
  '  medians of the rounds; "vs bare": the median of the per-round ratios to bare Fastify, and their range.',
  '  CPU in % of one core: the server process, its main thread (event loop), wrk, and every other process',
  '  (the worst round; the bench driver included).',
]

const LOAD_CPU_WARNING = 90

/**
 * What makes a set of runs suspect: failed requests, other load on the machine, and a load generator busy enough
 * to set the pace itself. `cores`: how many cores wrk has.
 */
export function runNotes(name: string, runs: LoadResult[], loadCores: number): string[] {
  const notes: string[] = []
  const failures = runs.flatMap((run) => run.failures)
  if (failures.length > 0) notes.push(`${name} had failures (${failures.join(', ')}): treat it as suspect.`)
  const others = Math.max(...runs.map((run) => run.otherCpu))
  if (others > OTHERS_CPU_LIMIT) {
    notes.push(
      `other processes used up to ${pct(others)} of a core during ${name}: rerun on a quiet machine.`,
    )
  }
  const load = Math.max(...runs.map((run) => run.loadCpu))
  if (load > LOAD_CPU_WARNING * loadCores) {
    notes.push(
      `wrk used up to ${pct(load)} of its ${loadCores} core(s) during ${name}: the load generator may have set the ` +
        'pace there, not the server.',
    )
  }
  return notes
}
