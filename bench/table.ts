// Text formatting for the bench report: aligned tables, numbers with units, and the verdict against a target.

export type Target = { op: '>=' | '<='; limit: number; unit: 'x' | 'MB' }

export type TargetRow = {
  name: string
  measured: string
  baseline: string
  /** The number compared with the target: a ratio, or megabytes. */
  value: number
  target: Target
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)))
  // The first column is text and aligned left; the others are numbers and aligned right.
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].map((l) => `  ${l}`).join('\n')
}

export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export const ms = (value: number) => num(value, value < 10 ? 2 : 1)
export const mb = (value: number) => `${num(value, 1)} MB`
export const pct = (value: number) => `${num(value)}%`
export const ratio = (value: number) => `${num(value, 2)}x`

export function passes({ value, target }: Pick<TargetRow, 'value' | 'target'>): boolean {
  if (!Number.isFinite(value)) return false
  return target.op === '>=' ? value >= target.limit : value <= target.limit
}

/** The ratio, with a third decimal when two would make a miss look like the limit itself (0.797 as 0.80x). */
function ratioBeside(row: TargetRow): string {
  const text = ratio(row.value)
  return text === ratio(row.target.limit) && !passes(row) ? `${num(row.value, 3)}x` : text
}

export function targetTable(rows: TargetRow[]): string {
  return table(
    ['measurement', 'measured', 'baseline', 'ratio', 'target', 'result'],
    rows.map((row) => [
      row.name,
      row.measured,
      row.baseline,
      row.target.unit === 'x' ? ratioBeside(row) : '-',
      `${row.target.op} ${row.target.unit === 'x' ? ratio(row.target.limit) : mb(row.target.limit)}`,
      passes(row) ? 'PASS' : 'MISS',
    ]),
  )
}
