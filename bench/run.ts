// `npm run bench`: runs the sections below in order, each printing its numbers beside a baseline measured in the
// same run (bare Fastify, the hash ceiling, an idle server), then the targets and the notes. The servers under
// test run on the server cores, wrk on the load cores (taskset), all servers on this node binary. A report, not
// a test: a missed target still exits 0; only a crash exits non-zero. See bench/README.md.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { buildServers, fromSources, npmStart } from './lib/build.ts'
import {
  type Context,
  list,
  type RunnableSection,
  type SectionReport,
  type Settings,
  setting,
} from './lib/context.ts'
import { affinity, normalizeCpus, type ServerProcess, startServer } from './lib/processes.ts'
import { mayRerun, noise, OTHERS_CPU_LIMIT } from './lib/quiet.ts'
import { num, type TargetRow, targetTable } from './lib/report.ts'
import { tesseraConfig, tesseraEnv } from './lib/tessera.ts'
import { wrkVersion } from './lib/wrk.ts'
import coldStart from './sections/cold-start.bench.ts'
import databases from './sections/databases.bench.ts'
import events from './sections/events.bench.ts'
import keys from './sections/keys.bench.ts'
import logins from './sections/logins.bench.ts'
import requests from './sections/requests.bench.ts'
import upgrade from './sections/upgrade.bench.ts'

/** The sections, in the order they run. A new section: a file in ./sections, and a line here. */
const SECTIONS: RunnableSection[] = [requests, logins, coldStart, databases, keys, upgrade, events]

const names = SECTIONS.map((section) => section.name)
const selected = list('BENCH_SECTIONS', names, names)
const serverCpus = process.env.BENCH_SERVER_CPUS || '1'
const loadCpus = process.env.BENCH_LOAD_CPUS || '0'
const wrkPath = process.env.BENCH_WRK || 'wrk'
const settings: Settings = {
  serverCpus,
  loadCpus,
  serverCores: normalizeCpus(serverCpus).split(',').length,
  connections: setting('BENCH_CONNECTIONS', 50),
  rounds: setting('BENCH_ROUNDS', 5),
  durationSeconds: setting('BENCH_DURATION', 4),
  warmupSeconds: setting('BENCH_WARMUP', 3),
  sectionRounds: setting('BENCH_SECTION_ROUNDS', 2),
  sectionDurationSeconds: setting('BENCH_SECTION_DURATION', 2),
  sectionWarmupSeconds: setting('BENCH_SECTION_WARMUP', 1),
  retries: setting('BENCH_RETRIES', 2, 0),
  logLevel: process.env.BENCH_LOG_LEVEL || 'silent',
  // npm start's node options (its V8 flags) first: the Tessera processes run as the server ships.
  // --expose-gc: the requests section collects its servers while idle before measuring (bench/servers/collect-on-request.ts).
  serverExecArgv: [
    ...npmStart().nodeOptions,
    '--expose-gc',
    ...(process.env.BENCH_SERVER_EXEC_ARGV ?? '').split(' ').filter(Boolean),
  ],
}

/** The cores must exist, be ours, and not overlap; then this process (the driver) moves to the load cores. */
function pinDriver(): void {
  const ours = new Set((affinity(process.pid)[0] ?? '').split(','))
  const server = normalizeCpus(serverCpus).split(',')
  const load = normalizeCpus(loadCpus).split(',')
  const missing = [...server, ...load].filter((cpu) => !ours.has(cpu))
  if (missing.length > 0 || server.some((cpu) => load.includes(cpu))) {
    throw new Error(
      `BENCH_SERVER_CPUS=${serverCpus} and BENCH_LOAD_CPUS=${loadCpus} must be distinct cores of this machine ` +
        `(this process may use ${[...ours].join(',')}): the bench needs at least 2 cores, one for each side.`,
    )
  }
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', loadCpus, String(process.pid)], { encoding: 'utf8' })
  if (pinned.error || pinned.status !== 0) {
    throw new Error(`taskset (util-linux) failed: ${pinned.error?.message ?? pinned.stderr}; Linux only`)
  }
}

/** The commit of the code measured, and whether src/ differs from it (read-only git calls). */
function codeVersion(): string {
  const git = (...args: string[]) => spawnSync('git', ['--no-optional-locks', ...args], { encoding: 'utf8' })
  const head = git('rev-parse', '--short', 'HEAD')
  if (head.status !== 0) return 'not a git checkout'
  const changed = git('diff', '--quiet', 'HEAD', '--', 'src').status !== 0
  return `commit ${head.stdout.trim()}${changed ? ', with uncommitted changes in src/' : ''}`
}

const stops: (() => Promise<void>)[] = []
const cleanups: (() => Promise<void>)[] = []
let tempDir: string | undefined

async function cleanUp() {
  await Promise.allSettled(stops.splice(0).map((stop) => stop()))
  for (const cleanup of cleanups.splice(0)) {
    await cleanup().catch((error: unknown) => console.error('bench: cleaning up:', error))
  }
  if (tempDir) rmSync(tempDir, { recursive: true, force: true })
}

async function main() {
  const startedAt = performance.now()
  pinDriver()
  const wrk = {
    path: wrkPath,
    version: wrkVersion(wrkPath),
    cpus: loadCpus,
    threads: normalizeCpus(loadCpus).split(',').length,
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'tessera-bench-'))
  tempDir = dir
  const [tesseraFile = '', bareFile = '', bareLoginFile = ''] = await buildServers(
    join(import.meta.dirname, '..'),
    [
      join(import.meta.dirname, 'servers', 'tessera-server.ts'),
      join(import.meta.dirname, 'servers', 'bare-server.ts'),
      join(import.meta.dirname, 'servers', 'bare-login-server.ts'),
    ],
  )
  // A fresh bare Fastify for each section, so that no section's baseline depends on what ran before it.
  const startBare = async () => {
    const server = await startServer('bare Fastify', bareFile, {
      cpus: serverCpus,
      execArgv: ['--expose-gc'],
    })
    stops.push(server.stop)
    return server
  }
  const bare = await startBare()
  const tesseraVersions = new Set<string>()
  let sectionServers: ServerProcess[] = []
  let started = 0
  const verbose = process.env.BENCH_VERBOSE ? (line: string) => console.error(line) : () => {}
  const ctx: Context = {
    settings,
    wrk: { ...wrk, tempDir: dir },
    tempDir: dir,
    bare,
    bareFile,
    bareLoginFile,
    async startTessera(name, env = {}) {
      const full: Record<string, string | undefined> = {
        ...tesseraEnv(dir, `tessera-${++started}`, settings.logLevel),
        ...env,
      }
      const defined = Object.fromEntries(Object.entries(full).filter(([, value]) => value !== undefined))
      const server = await startServer(name, tesseraFile, {
        cpus: serverCpus,
        start: { type: 'start', env: defined },
        execArgv: settings.serverExecArgv,
      })
      stops.push(server.stop)
      sectionServers.push(server)
      tesseraVersions.add(server.nodeVersion)
      return server
    },
    onCleanup: (cleanup) => cleanups.push(cleanup),
    verbose,
  }

  const { argon2, authStateCacheTtlMs } = tesseraConfig(dir)
  const say = (lines: string[]) => console.log(lines.join('\n'))
  say([
    `Tessera bench: a report, not a test (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
    `  machine   ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), ` +
      `${num(os.totalmem() / 2 ** 30, 1)} GiB, ${os.type()} ${os.release()} ${os.arch()}`,
    `  node      ${process.version} (${process.execPath}): the bench, Tessera and bare Fastify (bare Fastify reports ` +
      `${bare.nodeVersion})`,
    `  servers   Tessera and bare Fastify pinned to CPU ${serverCpus} (taskset -c ${serverCpus}; every thread checked), ` +
      'one process under load at a time',
    `  load      ${wrk.version}, ${wrk.threads} thread(s), pinned to CPU ${loadCpus} (taskset -c ${loadCpus}; checked on ` +
      'every run); the bench driver on those cores too',
    `  Tessera   NODE_ENV=production, LOG_LEVEL=${settings.logLevel}, rate limits off, HS256 with JWT_SECRET unless ` +
      `said, SQLite unless said, AUTH_STATE_CACHE_TTL_MS ${authStateCacheTtlMs}, argon2id m=${argon2.memoryKib} KiB ` +
      `t=${argon2.iterations} p=${argon2.parallelism}${settings.serverExecArgv.length ? `, node ${settings.serverExecArgv.join(' ')}` : ''}`,
    `  code      ${codeVersion()}; ${fromSources ? 'the TypeScript sources (BENCH_SOURCES=1)' : "built as npm start's (scripts/build.ts) into dist/bench/, bare Fastify too"}`,
    `  sections  ${selected.join(', ')}`,
    '',
  ])

  const targets: TargetRow[] = []
  const notes: string[] = []
  for (const [index, section] of SECTIONS.filter(({ name }) => selected.includes(name)).entries()) {
    const sectionStart = performance.now()
    console.error(`bench: ${section.name}: ${section.description}`)
    sectionServers = []
    if (index > 0) {
      await ctx.bare.stop()
      ctx.bare = await startBare()
    }
    let report: SectionReport
    try {
      report = await section.execute(ctx)
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      report = {
        lines: [`${section.name}: FAILED (${message}); see Notes`, ''],
        notes: [`${section.name} failed: ${message}`],
      }
    }
    await Promise.allSettled(sectionServers.map((server) => server.stop()))
    say(report.lines)
    targets.push(...(report.targets ?? []))
    notes.push(...(report.notes ?? []))
    console.error(`bench: ${section.name} took ${Math.round((performance.now() - sectionStart) / 1000)} s`)
  }

  if (targets.length > 0) say(['Targets', ...targetTable(targets), ''])
  if (noise.rerun > 0) {
    notes.push(
      `${noise.rerun} runs were done again because other processes used more than ${OTHERS_CPU_LIMIT}% of a core ` +
        `meanwhile (BENCH_RETRIES=${settings.retries}); ${num(noise.spentMs / 1000)} s went on them and on waiting ` +
        `for quiet${mayRerun() ? '' : ', the most the bench spends on that: later disturbed runs were kept'}.`,
    )
  }
  if (tesseraVersions.size > 0 && [...tesseraVersions].some((version) => version !== bare.nodeVersion)) {
    notes.push(
      `Tessera ran on Node ${[...tesseraVersions].join(', ')} but bare Fastify on ${bare.nodeVersion}.`,
    )
  }
  if (notes.length > 0) say(['Notes', ...notes.map((note) => `  - ${note}`), ''])
  say([
    `Tessera processes reported Node ${[...tesseraVersions].join(', ') || '-'}; ${num((performance.now() - startedAt) / 1000)} s in all.`,
  ])
}

process.once('SIGINT', () => {
  void cleanUp().then(() => process.exit(130))
})

try {
  await main()
  await cleanUp()
} catch (error) {
  console.error('bench failed:', error instanceof Error ? error.message : error)
  await cleanUp()
  process.exit(1)
}
