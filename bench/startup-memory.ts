// `node bench/startup-memory.ts [runs]`: what each part of a Tessera start adds to a process's memory (issue 19,
// docs/decisions/0019-memory-and-hot-path.md). Each run is a fresh process that imports the steps below in turn
// and reads RSS and heap used after a full GC after each; the table gives the median of `runs` (5 by default).
// Not a section of `npm run bench`, which measures servers under wrk: this measures imports, in one process.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const ROOT = resolve(import.meta.dirname, '..')
const src = (path: string) => pathToFileURL(join(ROOT, 'src', path)).href

/** What a start loads, in the order it loads it: packages first (on top of Fastify, as a server has it). */
const STEPS: { label: string; imports: string[] }[] = [
  { label: 'an empty .ts module (type stripping)', imports: ['EMPTY_TS'] },
  { label: 'fastify', imports: ['fastify'] },
  { label: 'typebox', imports: ['typebox'] },
  { label: 'kysely', imports: ['kysely'] },
  { label: 'ajv-formats', imports: ['ajv-formats'] },
  { label: 'fast-jwt', imports: ['fast-jwt'] },
  { label: 'pino, uuid', imports: ['pino', 'uuid'] },
  {
    label: '@fastify/swagger, swagger-ui, cookie',
    imports: ['@fastify/swagger', '@fastify/swagger-ui', 'cookie'],
  },
  {
    label: 'otpauth, confusables, safe-regex2, standardwebhooks, rate-limiter-flexible',
    imports: ['otpauth', 'confusables', 'safe-regex2', 'standardwebhooks', 'rate-limiter-flexible'],
  },
  { label: '@node-rs/argon2, @node-rs/bcrypt', imports: ['@node-rs/argon2', '@node-rs/bcrypt'] },
  { label: 'src/config', imports: [src('config/load-config.ts')] },
  { label: 'src/deps.ts (every service)', imports: [src('deps.ts')] },
  { label: 'src/app.ts, src/modules.ts', imports: [src('app.ts'), src('modules.ts')] },
]

// Run as an ES module from the project's folder, so that packages resolve as Tessera's do.
const CHILD = `
const steps = JSON.parse(process.argv[1])
const read = () => { gc(); gc(); const usage = process.memoryUsage(); return [usage.rss / 1048576, usage.heapUsed / 1048576] }
const rows = [read()]
for (const step of steps) { for (const name of step) await import(name); rows.push(read()) }
console.log(JSON.stringify(rows))
`

const runs = Number(process.argv[2] ?? 5)
const dir = mkdtempSync(join(tmpdir(), 'tessera-startup-memory-'))
const emptyTs = pathToFileURL(join(dir, 'empty.ts')).href
writeFileSync(join(dir, 'empty.ts'), 'export {}\n')
const imports = STEPS.map((step) => step.imports.map((name) => (name === 'EMPTY_TS' ? emptyTs : name)))
const results: number[][][] = []
try {
  for (let run = 0; run < runs; run++) {
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', CHILD, JSON.stringify(imports)],
      { cwd: ROOT, encoding: 'utf8' },
    )
    if (child.status !== 0) throw new Error(`a run failed: ${child.stderr}`)
    results.push(JSON.parse(child.stdout) as number[][])
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1] ?? Number.NaN
const at = (step: number, column: number) => median(results.map((rows) => rows[step]?.[column] ?? Number.NaN))
const mb = (value: number, sign = false) => `${sign && value >= 0 ? '+' : ''}${value.toFixed(1)}`.padStart(7)
console.log(`Startup memory, ${process.version}, median of ${runs} runs (MB, after a full GC)`)
console.log(`${'step'.padEnd(78)}    RSS   heap`)
console.log(`${'node, nothing imported'.padEnd(78)}${mb(at(0, 0))}${mb(at(0, 1))}`)
STEPS.forEach((step, index) => {
  const added = (column: number) =>
    median(
      results.map(
        (rows) => (rows[index + 1]?.[column] ?? Number.NaN) - (rows[index]?.[column] ?? Number.NaN),
      ),
    )
  const rss = added(0)
  const heap = added(1)
  console.log(`${step.label.padEnd(78)}${mb(rss, true)}${mb(heap, true)}`)
})
console.log(`${'all of it'.padEnd(78)}${mb(at(STEPS.length, 0))}${mb(at(STEPS.length, 1))}`)
