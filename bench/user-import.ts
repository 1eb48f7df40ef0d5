// `node bench/user-import.ts [rows]`: `tessera user import` on a source of `rows` users (1,000,000 by default), made
// first, into a fresh SQLite database: rows/s and the import process's peak RSS (from /usr/bin/time), beside a
// baseline measured in the same run, the import of the source's first 1,000 rows (what the command costs whatever
// the source's size). Then a second run over the same source (every row already imported), and a run with V8's
// heap capped (old space 48 MB, young 2 MB semi-spaces), which can only finish if what the import keeps alive does
// not grow with the source.
// Not a section of `npm run bench`, which measures servers under wrk: an import is one process from start to end.
//   node bench/user-import.ts make FILE ROWS [sqlite|csv|jsonl]   only makes the source (the command printed)
// BENCH_IMPORT_FORMAT: the source's format (sqlite, the Flask tutorial's table, by default; csv; jsonl).
import { spawnSync } from 'node:child_process'
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { hashSync } from '@node-rs/bcrypt'

const ROOT = resolve(import.meta.dirname, '..')
type Format = 'sqlite' | 'csv' | 'jsonl'

/** Rows of the Flask tutorial's `user` table: one bcrypt hash for all (the import checks its form, not it). */
async function makeSource(file: string, rows: number, format: Format): Promise<void> {
  const hash = hashSync('bench password', 4)
  const row = (id: number) => ({
    id,
    firstName: 'First',
    lastName: `Last${id}`,
    username: `user${id}`,
    password: hash,
  })
  if (format === 'sqlite') {
    const db = new DatabaseSync(file)
    db.exec(`CREATE TABLE user (id INTEGER NOT NULL, "firstName" VARCHAR(100), "lastName" VARCHAR(100),
      username VARCHAR(50), password VARCHAR(100), PRIMARY KEY (id), UNIQUE (username)); BEGIN`)
    const insert = db.prepare('insert into user values (?, ?, ?, ?, ?)')
    for (let id = 1; id <= rows; id++) {
      const r = row(id)
      insert.run(r.id, r.firstName, r.lastName, r.username, r.password)
    }
    db.exec('COMMIT')
    db.close()
    return
  }
  const out = createWriteStream(file)
  const write = (text: string) =>
    out.write(text) ? undefined : new Promise<void>((done) => out.once('drain', () => done()))
  if (format === 'csv') await write('id,username,password,firstName,lastName\n')
  for (let id = 1; id <= rows; id++) {
    const r = row(id)
    const line =
      format === 'csv'
        ? `${r.id},${r.username},${r.password},${r.firstName},${r.lastName}\n`
        : `${JSON.stringify(r)}\n`
    const waiting = write(line)
    if (waiting) await waiting
  }
  await new Promise<void>((done) => out.end(done))
}

const node = process.execPath
/** The same-run baseline: an import of this many rows costs what the command costs, whatever the source's size. */
const BASELINE_ROWS = 1_000
/** V8's heap capped far below what an uncapped run reaches: the run fails if the live heap grows with the source. */
const CAPPED = '--max-old-space-size=48 --max-semi-space-size=2'
const mb = (kb: number) => `${Math.round(kb / 1024)} MB`
const [first, ...rest] = process.argv.slice(2)
if (first === 'make') {
  const [file, rows, format] = rest
  await makeSource(file ?? 'users.db', Number(rows ?? 1_000_000), (format as Format | undefined) ?? 'sqlite')
} else {
  const rows = Number(first ?? 1_000_000)
  const format = (process.env.BENCH_IMPORT_FORMAT as Format | undefined) ?? 'sqlite'
  const dir = mkdtempSync(join(tmpdir(), 'tessera-import-bench-'))
  const sourceOf = (name: string) => join(dir, `${name}.${format === 'sqlite' ? 'db' : format}`)
  try {
    const source = sourceOf('users')
    console.log(`Source: node bench/user-import.ts make ${source} ${rows} ${format}`)
    const started = performance.now()
    await makeSource(source, rows, format)
    console.log(
      `  made in ${((performance.now() - started) / 1000).toFixed(1)} s, ${(statSync(source).size / 1e6).toFixed(0)} MB`,
    )
    const small = sourceOf('small')
    await makeSource(small, BASELINE_ROWS, format)

    console.log(`Import: /usr/bin/time -f '%M %e' node bin/tessera.js user import <source> --json`)
    const baseline = importOnce(small, join(dir, 'baseline.db'))
    console.log(
      `  baseline, ${BASELINE_ROWS} rows: ${baseline.seconds.toFixed(1)} s, peak RSS ${mb(baseline.peakKb)}`,
    )
    const first = importOnce(source, join(dir, 'tessera.db'))
    console.log(
      `  ${rows} rows: imported ${first.report.imported} (${first.report.skipped} skipped) in ` +
        `${first.seconds.toFixed(1)} s, ${Math.round(rows / first.seconds)} rows/s; peak RSS ${mb(first.peakKb)} = ` +
        `${(first.peakKb / baseline.peakKb).toFixed(2)}x the baseline`,
    )
    const again = importOnce(source, join(dir, 'tessera.db'))
    console.log(
      `  run again: ${again.report.alreadyImported} already imported in ${again.seconds.toFixed(1)} s, peak RSS ` +
        `${mb(again.peakKb)} = ${(again.peakKb / baseline.peakKb).toFixed(2)}x the baseline`,
    )
    const capped = importOnce(source, join(dir, 'capped.db'), CAPPED)
    console.log(
      `  NODE_OPTIONS=${CAPPED}: imported ${capped.report.imported} in ${capped.seconds.toFixed(1)} s, peak RSS ` +
        `${mb(capped.peakKb)} = ${(capped.peakKb / baseline.peakKb).toFixed(2)}x the baseline`,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

type Report = { imported: number; skipped: number; alreadyImported: number }

/** One `tessera user import --json` of `source` into the SQLite file `database`, timed by /usr/bin/time. */
function importOnce(source: string, database: string, nodeOptions?: string) {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database,
    PUBLIC_URL: 'https://bench.example',
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
  }
  const started = performance.now()
  const run = spawnSync(
    '/usr/bin/time',
    ['-f', 'TIME %M %e', node, join(ROOT, 'bin/tessera.js'), 'user', 'import', source, '--json'],
    { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  )
  const seconds = (performance.now() - started) / 1000
  const timing = /TIME (\d+) ([\d.]+)/.exec(run.stderr)
  if (run.status !== 0 || !timing) throw new Error(`the import failed (${run.status}): ${run.stderr}`)
  return { report: JSON.parse(run.stdout) as Report, seconds, peakKb: Number(timing[1]) }
}
