// `node bench/user-import.ts [rows]`: `tessera user import` on a source of `rows` users (1,000,000 by default), made
// first, into a fresh SQLite database: rows/s and the import process's peak RSS (from /usr/bin/time). Not a
// section of `npm run bench`, which measures servers under wrk: an import is one process from start to end.
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
const [first, ...rest] = process.argv.slice(2)
if (first === 'make') {
  const [file, rows, format] = rest
  await makeSource(file ?? 'users.db', Number(rows ?? 1_000_000), (format as Format | undefined) ?? 'sqlite')
} else {
  const rows = Number(first ?? 1_000_000)
  const format = (process.env.BENCH_IMPORT_FORMAT as Format | undefined) ?? 'sqlite'
  const dir = mkdtempSync(join(tmpdir(), 'tessera-import-bench-'))
  try {
    const source = join(dir, `users.${format === 'sqlite' ? 'db' : format}`)
    const make = ['bench/user-import.ts', 'make', source, String(rows), format]
    console.log(`Source: node ${make.join(' ')}`)
    let started = performance.now()
    await makeSource(source, rows, format)
    console.log(
      `  made in ${((performance.now() - started) / 1000).toFixed(1)} s, ${(statSync(source).size / 1e6).toFixed(0)} MB`,
    )
    const env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      LOG_LEVEL: 'silent',
      DATABASE_URL: join(dir, 'tessera.db'),
      PUBLIC_URL: 'https://bench.example',
    }
    const importArgs = [join(ROOT, 'bin/tessera.js'), 'user', 'import', source, '--json']
    console.log(`Import: /usr/bin/time -f '%M %e' node bin/tessera.js user import ${source} --json`)
    started = performance.now()
    const run = spawnSync('/usr/bin/time', ['-f', 'TIME %M %e', node, ...importArgs], {
      env,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    })
    const seconds = (performance.now() - started) / 1000
    const timing = /TIME (\d+) ([\d.]+)/.exec(run.stderr)
    if (run.status !== 0 || !timing) throw new Error(`the import failed (${run.status}): ${run.stderr}`)
    const report = JSON.parse(run.stdout) as { imported: number; skipped: number }
    console.log(
      `  imported ${report.imported} of ${rows} rows (${report.skipped} skipped) in ${seconds.toFixed(1)} s`,
    )
    console.log(
      `  ${Math.round(rows / seconds)} rows/s; peak RSS of the import process ${Math.round(Number(timing[1]) / 1024)} MB`,
    )
    // A second run over the same source: every row is already imported.
    started = performance.now()
    const again = spawnSync('/usr/bin/time', ['-f', 'TIME %M %e', node, ...importArgs], {
      env,
      encoding: 'utf8',
    })
    const againTiming = /TIME (\d+) ([\d.]+)/.exec(again.stderr)
    const againReport = JSON.parse(again.stdout) as { alreadyImported: number }
    console.log(
      `  run again: ${againReport.alreadyImported} already imported in ${((performance.now() - started) / 1000).toFixed(1)} s, peak RSS ${Math.round(Number(againTiming?.[1]) / 1024)} MB`,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
