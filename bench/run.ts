// `npm run bench`: drives Tessera and a bare Fastify server, each in its own process on 127.0.0.1, with autocannon,
// and prints throughput, latency and memory beside the bare baseline as ratios, and logins/s beside the hash
// ceiling. A report, not a test: a missed target still exits 0; only a crash exits non-zero. See bench/README.md.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createPasswordHasher } from '../src/auth/password-hasher.ts'
import { type Config, loadConfig } from '../src/config/load-config.ts'
import { type LoadOptions, type LoadResult, median, runLoad } from './load.ts'
import {
  type Memory,
  memory,
  resetPeakMemory,
  type ServerProcess,
  startServer,
  threadNames,
} from './processes.ts'
import { type BenchParams, printReport } from './report.ts'

function setting(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive whole number; got "${raw}"`)
  return value
}

const params: BenchParams = {
  cores: os.availableParallelism(),
  durationSeconds: setting('BENCH_DURATION', 4),
  rounds: setting('BENCH_ROUNDS', 4),
  warmupSeconds: setting('BENCH_WARMUP', 3),
  connections: setting('BENCH_CONNECTIONS', 50),
  loginStepSeconds: setting('BENCH_LOGIN_DURATION', 5),
  probeRate: setting('BENCH_PROBE_RATE', 200),
  probeConnections: setting('BENCH_PROBE_CONNECTIONS', 10),
  threadpoolSize: process.env.UV_THREADPOOL_SIZE,
  serverExecArgv: (process.env.BENCH_SERVER_EXEC_ARGV ?? '').split(' ').filter(Boolean),
}

const HASH_SAMPLES = 20
const PARALLEL_HASH_MS = 3_000

/** Seconds per argon2id hash at the configured parameters, one at a time; and hashes/s with one per core. */
async function timeHashing(argon2: Config['argon2']) {
  const hasher = createPasswordHasher(argon2)
  const password = randomBytes(12).toString('hex')
  await hasher.hash(password)
  // The median, so that one hash slowed by something else on the machine does not move the ceiling.
  const samples: number[] = []
  for (let i = 0; i < HASH_SAMPLES; i++) {
    const start = performance.now()
    await hasher.hash(password)
    samples.push((performance.now() - start) / 1000)
  }
  const secondsPerHash = median(samples)
  // One hash per core at a time: what the cores sustain together, sharing caches and memory bandwidth.
  let hashes = 0
  const start = performance.now()
  const until = start + PARALLEL_HASH_MS
  await Promise.all(
    Array.from({ length: params.cores }, async () => {
      while (performance.now() < until) {
        await hasher.hash(password)
        hashes++
      }
    }),
  )
  return {
    samples: HASH_SAMPLES,
    secondsPerHash,
    parallelHashesPerSecond: hashes / ((performance.now() - start) / 1000),
  }
}

async function postJson(
  server: ServerProcess,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const json = (await response.json()) as Record<string, unknown>
  if (!response.ok) throw new Error(`POST ${path} answered ${response.status}: ${JSON.stringify(json)}`)
  return json
}

const servers: ServerProcess[] = []
let tempDir: string | undefined

async function cleanUp() {
  await Promise.allSettled(servers.map((server) => server.stop()))
  if (tempDir) rmSync(tempDir, { recursive: true, force: true })
}

async function main() {
  tempDir = mkdtempSync(join(os.tmpdir(), 'tessera-bench-'))
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DATABASE_URL: join(tempDir, 'tessera.db'),
    JWT_SECRET: randomBytes(36).toString('base64url'),
  }
  // The production argon2 parameters, unless the caller set others to see their cost.
  for (const name of ['ARGON2_MEMORY_KIB', 'ARGON2_ITERATIONS', 'ARGON2_PARALLELISM']) {
    const value = process.env[name]
    if (value) env[name] = value
  }
  const config = loadConfig(env)
  const { cores, connections, durationSeconds, rounds } = params

  const bare = await startServer('bare Fastify', join(import.meta.dirname, 'bare-server.ts'))
  servers.push(bare)
  const tessera = await startServer('Tessera', join(import.meta.dirname, 'bench-server.ts'), {
    start: { type: 'start', env },
    execArgv: params.serverExecArgv,
  })
  servers.push(tessera)

  // Tessera's peak RSS per phase: read VmHWM at the end of each run, then reset it for the next.
  const peaks = new Map<string, Memory>()
  let peakResets = true
  const endPhase = (name: string) => {
    const now = memory(tessera.pid)
    const before = peaks.get(name)
    peaks.set(name, before && before.peakMb > now.peakMb ? before : now)
    peakResets = resetPeakMemory(tessera.pid) && peakResets
  }

  const credentials = { username: 'bench-user', password: randomBytes(12).toString('hex') }
  await postJson(tessera, '/auth/register', { ...credentials, firstName: 'Bench', lastName: 'User' })
  const { access_token: token } = await postJson(tessera, '/auth/login', credentials)
  const headers = { authorization: `Bearer ${String(token)}` }
  endPhase('startup, register, login')

  // Requests: a warm-up of each, then rounds of bare, verify-only and /auth/me back to back. Each ratio is taken
  // within a round, so that a machine that slows down or speeds up affects both sides of it alike.
  const routes = [
    { name: 'bare', load: { server: bare, path: '/bench/bare', connections, durationSeconds } },
    {
      name: 'verify-only',
      load: { server: tessera, path: '/bench/verify-only', headers, connections, durationSeconds },
    },
    {
      name: 'GET /auth/me',
      load: { server: tessera, path: '/auth/me', headers, connections, durationSeconds },
    },
  ]
  const requestRuns = new Map<string, LoadResult[]>(routes.map(({ name }) => [name, []]))
  for (const { name, load } of routes) {
    await runLoad({ ...load, durationSeconds: params.warmupSeconds })
    if (load.server === tessera) endPhase(name)
  }
  for (let round = 0; round < rounds; round++) {
    for (const { name, load } of routes) {
      requestRuns.get(name)?.push(await runLoad(load))
      if (load.server === tessera) endPhase(name)
    }
  }
  const bareMemory = memory(bare.pid)
  await bare.stop()

  // Timed while both servers are idle, just before the logins it is the ceiling of.
  const hashing = await timeHashing(config.argon2)

  const login = (n: number, seconds: number): LoadOptions => ({
    server: tessera,
    path: '/auth/login',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(credentials),
    connections: n,
    durationSeconds: seconds,
  })
  await runLoad(login(2 * cores, Math.min(params.warmupSeconds, 2)))
  const loginSteps: { connections: number; result: LoadResult }[] = []
  for (const n of [...new Set([cores, 2 * cores, 4 * cores])]) {
    loginSteps.push({ connections: n, result: await runLoad(login(n, params.loginStepSeconds)) })
  }
  endPhase('logins')
  const best = loginSteps.reduce((a, b) => (b.result.requestsPerSecond > a.result.requestsPerSecond ? b : a))

  // /auth/me at a fixed rate, alternately on an idle server and during a login storm. The storm starts a second
  // before the probe and ends a second after it, so the probe sees only the storm.
  const probe: LoadOptions = {
    server: tessera,
    path: '/auth/me',
    headers,
    connections: params.probeConnections,
    overallRate: params.probeRate,
    durationSeconds,
  }
  const probeRounds: { idle: LoadResult; storm: LoadResult; logins: LoadResult }[] = []
  for (let round = 0; round < rounds; round++) {
    const idle = await runLoad(probe)
    endPhase('GET /auth/me at a fixed rate, idle')
    const logins = runLoad(login(best.connections, durationSeconds + 2))
    await sleep(1_000)
    const storm = await runLoad(probe)
    probeRounds.push({ idle, storm, logins: await logins })
    endPhase('GET /auth/me at a fixed rate, login storm')
  }

  const finalMemory = memory(tessera.pid)
  const threads = threadNames(tessera.pid)
  await tessera.stop()

  printReport({
    params,
    argon2: config.argon2,
    hashing,
    requestRuns,
    bareMemory,
    peaks: [...peaks],
    peakResets,
    finalMemory,
    threads,
    loginSteps,
    best,
    probeRounds,
  })
}

process.once('SIGINT', () => {
  void cleanUp().then(() => process.exit(130))
})

try {
  await main()
  await cleanUp()
} catch (error) {
  console.error('bench failed:', error)
  await cleanUp()
  process.exit(1)
}
