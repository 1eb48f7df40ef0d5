// One bounded wrk run against a server, wrk pinned to the load cores (`taskset -c`) in a process of its own:
// throughput, latency percentiles from every response (wrk records each in microseconds), and who used the CPU
// meanwhile: the server (its process tree), the database servers it uses, the load generator, and everything
// else on the machine, which would make the numbers suspect. The Lua scripts are in ./lua.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  affinity,
  commandCpuMs,
  cpuTime,
  endedChildrenCpuMs,
  machineBusyMs,
  normalizeCpus,
  processCpuMs,
  processTree,
  type ServerProcess,
} from './processes.ts'

export type WrkScript =
  /** Each line of `file` a different access token, in a cycle from `start` (the positions a run ended at). */
  | { kind: 'tokens'; file: string; start: number[] }
  /** Each line of `file` the refresh token of a session of its own. */
  | { kind: 'refresh'; file: string }

export type LoadOptions = {
  server: ServerProcess
  path: string
  connections: number
  durationSeconds: number
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  /** Requests that differ from one to the next (see ./lua); without it, the same request every time. */
  script?: WrkScript
  /** Count the responses by status, to name the failed ones (wrk then reads every body: for slow routes only). */
  countStatuses?: boolean
  /** A fixed overall rate in requests/s; without it, each connection sends its next request at once. */
  ratePerSecond?: number
  /** Command names of the database servers the server uses (`postgres`): their CPU is reported apart. */
  databaseProcesses?: readonly string[]
}

export type LoadResult = {
  /** Responses below 400, per second. */
  requestsPerSecond: number
  /** Milliseconds. */
  p50: number
  p90: number
  p99: number
  /** Responses of status 400 and above, socket errors and timeouts: any of them makes the numbers suspect. */
  failures: string[]
  /** Percent of one core, over the run: the server's processes, their main threads, wrk, the databases. */
  serverCpu: number
  serverMainThreadCpu: number
  loadCpu: number
  /** NaN without databaseProcesses. */
  databaseCpu: number
  /** Every other process on the machine, this one (the bench driver) included. */
  otherCpu: number
  /** Where each wrk thread stopped in its list (the tokens script). */
  positions: number[]
}

export type Wrk = { path: string; version: string; cpus: string; threads: number; tempDir: string }

/** The wrk binary's version line; throws, saying how to install it, when there is none. */
export function wrkVersion(path: string): string {
  const probe = spawnSync(path, ['--version'], { encoding: 'utf8' })
  if (probe.error) {
    throw new Error(
      `the bench needs wrk (${path}: ${probe.error.message}). Install it: \`apt-get install wrk\` (Debian, Ubuntu), ` +
        '`brew install wrk` (macOS), or build https://github.com/wg/wrk; or point BENCH_WRK at the binary.',
    )
  }
  return (probe.stdout.split('\n')[0] ?? '').replace(/ Copyright.*$/, '').trim()
}

const LUA_DIR = join(import.meta.dirname, 'lua')
const lua = (name: string) => readFileSync(join(LUA_DIR, `${name}.lua`), 'utf8')

/** A Lua string literal: every byte but letters, digits and a few safe signs as a 3-digit decimal escape. */
function luaString(text: string): string {
  const safe = (byte: number) => /[\w .:/=+-]/.test(String.fromCharCode(byte))
  const bytes = [...Buffer.from(text)]
  return `"${bytes.map((b) => (safe(b) ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`)).join('')}"`
}

let scripts = 0

function writeScript(wrk: Wrk, options: LoadOptions, threads: number): string {
  const lines = [`THREADS = ${threads}`, `wrk.method = ${luaString(options.method ?? 'GET')}`]
  if (options.body !== undefined) lines.push(`wrk.body = ${luaString(options.body)}`)
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`)
  }
  const parts = [lines.join('\n'), lua('common')]
  if (options.ratePerSecond) {
    parts[0] += `\nINTERVAL_MS = ${(options.connections / options.ratePerSecond) * 1000}`
    parts.push(lua('paced'))
  }
  if (options.countStatuses) parts.push(lua('statuses'))
  const { script } = options
  if (script) {
    parts[0] += `\nTOKENS_FILE = ${luaString(script.file)}`
    if (script.kind === 'tokens') parts[0] += `\nSTART = { ${script.start.join(', ')} }`
    parts.push(lua(script.kind))
  }
  const file = join(wrk.tempDir, `wrk-${++scripts}.lua`)
  writeFileSync(file, parts.join('\n'))
  return file
}

// The wrk processes running now: their CPU so far, with that of the ones that ended (this process's cutime),
// makes a counter of all load-generator CPU that stays right when two runs overlap (the probe in a login storm).
const running = new Set<number>()
const loadCpuMs = () => endedChildrenCpuMs() + [...running].reduce((sum, pid) => sum + processCpuMs(pid), 0)

type WrkReport = {
  requests: number
  durationUs: number
  p50: number
  p90: number
  p99: number
  errors: { connect: number; read: number; write: number; status: number; timeout: number }
  statuses: Record<string, number>
  positions: number[]
}

export async function runLoad(wrk: Wrk, options: LoadOptions): Promise<LoadResult> {
  const { server } = options
  const threads = Math.min(wrk.threads, options.connections)
  const args = ['-t', String(threads), '-c', String(options.connections), '-d', `${options.durationSeconds}s`]
  args.push(
    '--timeout',
    '10s',
    '-s',
    writeScript(wrk, options, threads),
    `http://127.0.0.1:${server.port}${options.path}`,
  )
  const databases = options.databaseProcesses ?? []
  const databaseCpuMs = () => (databases.length > 0 ? commandCpuMs(databases) : Number.NaN)
  const serverPids = processTree(server.pid)
  const before = {
    machine: machineBusyMs(),
    database: databaseCpuMs(),
    server: cpuTime(serverPids),
    load: loadCpuMs(),
  }
  const wallStart = performance.now()

  const child = spawn('taskset', ['-c', wrk.cpus, wrk.path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const pid = child.pid
  if (pid !== undefined) running.add(pid)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => {
      if (pid !== undefined) running.delete(pid)
      resolve(code)
    })
  })
  // Once taskset has exec'd wrk: check that every thread of it is on the load cores.
  await Promise.race([sleep(Math.min(300, options.durationSeconds * 250)), exited])
  const pinned = pid === undefined ? [] : affinity(pid).filter(Boolean)
  if (pinned.some((cpus) => cpus !== normalizeCpus(wrk.cpus))) {
    child.kill('SIGKILL')
    throw new Error(`wrk was not pinned to CPUs ${wrk.cpus}: ${pinned.join(' ')}`)
  }
  const code = await exited
  const wallMs = performance.now() - wallStart
  server.assertAlive()
  const line = stdout.split('\n').find((each) => each.startsWith('@@bench '))
  if (code !== 0 || !line) throw new Error(`wrk exited with ${code}: ${(stderr || stdout).trim()}`)
  const report = JSON.parse(line.slice('@@bench '.length)) as WrkReport

  const after = {
    machine: machineBusyMs(),
    database: databaseCpuMs(),
    server: cpuTime(serverPids),
    load: loadCpuMs(),
  }
  const percentOfCore = (cpuMs: number) => (cpuMs / wallMs) * 100
  const serverCpu = percentOfCore(after.server.processMs - before.server.processMs)
  const loadCpu = percentOfCore(after.load - before.load)
  // Clamped: a database process that ended during the run (another client's backend) takes its CPU out of the sum.
  const databaseCpu = Math.max(0, percentOfCore(after.database - before.database))
  const { errors } = report
  const failures = Object.entries(report.statuses)
    .filter(([status]) => Number(status) >= 400)
    .map(([status, n]) => `${n} x HTTP ${status}`)
  if (failures.length === 0 && errors.status > 0) failures.push(`${errors.status} responses >= 400`)
  for (const kind of ['connect', 'read', 'write', 'timeout'] as const) {
    if (errors[kind] > 0) failures.push(`${errors[kind]} ${kind} errors`)
  }
  return {
    requestsPerSecond: (report.requests - errors.status) / (report.durationUs / 1e6),
    p50: report.p50 / 1000,
    p90: report.p90 / 1000,
    p99: report.p99 / 1000,
    failures,
    serverCpu,
    serverMainThreadCpu: percentOfCore(after.server.mainThreadMs - before.server.mainThreadMs),
    loadCpu,
    databaseCpu,
    otherCpu: Math.max(
      0,
      percentOfCore(after.machine - before.machine) -
        serverCpu -
        loadCpu -
        (databases.length ? databaseCpu : 0),
    ),
    positions: report.positions,
  }
}
