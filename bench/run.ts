// `npm run bench`: drives Tessera and a bare Fastify server, each in its own process on 127.0.0.1, with autocannon,
// and prints throughput, latency and memory beside the bare baseline as ratios, and logins/s beside the hash
// ceiling, and the cost of the revocation check; then POST /auth/refresh, the revocation check with its cache off,
// SQLite beside PostgreSQL, verify-only per signing algorithm, and `tessera serve` with 1 and 2 workers, each in
// Tessera processes of their own. A report, not a test: a missed target still exits 0; only a crash exits
// non-zero. See bench/README.md.
import { createPrivateKey, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createPasswordHasher } from '../src/auth/password-hasher.ts'
import { type Config, loadConfig } from '../src/config/load-config.ts'
import { generatePrivateJwk, isHmac, JWT_ALGORITHMS, type JwtAlgorithm } from '../src/keys/algorithms.ts'
import { postgresSchemas, redisKeyPrefix } from './backends.ts'
import { MINT_BATCH } from './bench-response.ts'
import { refreshChain, type TokenCycle, tokenCycle, VERIFIED_TOKEN_CACHE_SIZE } from './chains.ts'
import { type LoadOptions, type LoadResult, median, runLoad } from './load.ts'
import {
  type Memory,
  memory,
  memoryByProcess,
  resetPeakMemory,
  type ServerProcess,
  startServer,
  threadNames,
} from './processes.ts'
import {
  BACKEND_MEASUREMENTS,
  BACKENDS,
  type Backend,
  type BackendMeasurement,
  type BenchParams,
  type BenchResults,
  backendRunName,
  type KeyResult,
  printReport,
  SECTIONS,
  type Section,
  type SectionResult,
  WORKER_COUNTS,
  workersRunName,
} from './report.ts'

function setting(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive whole number; got "${raw}"`)
  return value
}

/** A comma-separated list of the allowed words, or the fallback when unset. */
function list<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return [...fallback]
  const words = raw.split(',').map((word) => word.trim())
  const unknown = words.filter((word) => !(allowed as readonly string[]).includes(word))
  if (unknown.length > 0)
    throw new Error(`${name}: unknown ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`)
  return [...new Set(words as T[])]
}

const algorithms = list('BENCH_ALGORITHMS', JWT_ALGORITHMS, ['HS256', 'EdDSA', 'ES256', 'RS256'])
const params: BenchParams = {
  cores: os.availableParallelism(),
  durationSeconds: setting('BENCH_DURATION', 4),
  rounds: setting('BENCH_ROUNDS', 4),
  warmupSeconds: setting('BENCH_WARMUP', 3),
  connections: setting('BENCH_CONNECTIONS', 50),
  loginStepSeconds: setting('BENCH_LOGIN_DURATION', 5),
  probeRate: setting('BENCH_PROBE_RATE', 200),
  probeConnections: setting('BENCH_PROBE_CONNECTIONS', 10),
  sectionRounds: setting('BENCH_SECTION_ROUNDS', 2),
  sectionDurationSeconds: setting('BENCH_SECTION_DURATION', 2),
  sectionWarmupSeconds: setting('BENCH_SECTION_WARMUP', 1),
  distinctTokens: setting('BENCH_DISTINCT_TOKENS', 12_000),
  algorithms,
  skip: list('BENCH_SKIP', SECTIONS, []),
  logLevel: process.env.BENCH_LOG_LEVEL || 'silent',
  threadpoolSize: process.env.UV_THREADPOOL_SIZE,
  serverExecArgv: (process.env.BENCH_SERVER_EXEC_ARGV ?? '').split(' ').filter(Boolean),
}
const runs = (section: Section) => !params.skip.includes(section)
/** The PostgreSQL database in which the bench creates a schema per Tessera process, and the Redis server. */
const postgresUrl = process.env.BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test'
const redisUrl = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379'
/** BENCH_VERBOSE=1: every run of the request rounds on stderr as it ends, warm-ups included. */
const verbose = Boolean(process.env.BENCH_VERBOSE)

/**
 * Every rate limit off, in every Tessera process the bench starts: the bench measures the server, not the
 * limits, and its login sweep, refresh chains and sign-ups would otherwise be answered 429 within seconds.
 */
const NO_RATE_LIMITS = {
  RATE_LIMIT_LOGIN_PER_IP: '0',
  RATE_LIMIT_LOGIN_PER_USERNAME: '0',
  RATE_LIMIT_REGISTER_PER_IP: '0',
  RATE_LIMIT_REGISTER_PER_USERNAME: '0',
  RATE_LIMIT_REFRESH_PER_IP: '0',
  RATE_LIMIT_REFRESH_PER_SESSION: '0',
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
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  const json = (await response.json()) as Record<string, unknown>
  if (!response.ok) throw new Error(`POST ${path} answered ${response.status}: ${JSON.stringify(json)}`)
  return json
}

const servers: ServerProcess[] = []
let tempDir: string | undefined
const schemas = postgresSchemas(postgresUrl)

async function cleanUp() {
  await Promise.allSettled(servers.map((server) => server.stop()))
  if (tempDir) rmSync(tempDir, { recursive: true, force: true })
  await schemas
    .dropAll()
    .catch((error: unknown) => console.error('bench: dropping its PostgreSQL schemas:', error))
}

async function startTessera(name: string, env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServer(name, join(import.meta.dirname, 'bench-server.ts'), {
    start: { type: 'start', env },
    execArgv: params.serverExecArgv,
  })
  servers.push(server)
  return server
}

/**
 * `tessera serve --workers <workers>`, the production entry point (a cluster's primary and its workers when
 * workers > 1), driven over IPC through serve-ipc.ts. Only `env` configures it: the process environment is not
 * passed on, and it runs in the temp directory, where no .env file is.
 */
async function startServe(
  name: string,
  workers: number,
  env: Record<string, string>,
): Promise<ServerProcess> {
  const { UV_THREADPOOL_SIZE } = process.env
  const server = await startServer(name, join(import.meta.dirname, '..', 'bin', 'tessera.js'), {
    args: ['serve', '--workers', String(workers)],
    env: { ...env, ...(UV_THREADPOOL_SIZE ? { UV_THREADPOOL_SIZE } : {}) },
    cwd: tempDir,
    execArgv: ['--import', join(import.meta.dirname, 'serve-ipc.ts'), ...params.serverExecArgv],
  })
  servers.push(server)
  return server
}

type Credentials = { username: string; password: string }

/** Registers the bench user; returns its credentials and the headers of a fresh login's access token. */
async function signUp(server: ServerProcess) {
  const credentials: Credentials = { username: 'bench-user', password: randomBytes(12).toString('hex') }
  await postJson(server, '/auth/register', { ...credentials, firstName: 'Bench', lastName: 'User' })
  const { access_token: token } = await postJson(server, '/auth/login', credentials)
  return { credentials, headers: { authorization: `Bearer ${String(token)}` } }
}

/** A route of a round: a load, what to do after each run of it, and whether it needs no warm-up run. */
type Route = { name: string; load: LoadOptions; after?: () => Promise<void>; warmedUp?: boolean }

/**
 * POST /auth/refresh with one session per connection, each chained through its own refresh tokens (chains.ts).
 * The logins that open the sessions go one at a time (one argon2 hash's memory at once).
 */
async function refreshRoute(server: ServerProcess, user: Credentials, name: string, seconds: number) {
  const refreshTokens: string[] = []
  for (let i = 0; i < params.connections; i++) {
    refreshTokens.push(String((await postJson(server, '/auth/login', user)).refresh_token))
  }
  const chain = refreshChain(server, refreshTokens)
  const route: Route = {
    name,
    load: {
      server,
      path: '/auth/refresh',
      method: 'POST',
      connections: chain.sessions,
      durationSeconds: seconds,
      setupClient: chain.setupClient,
    },
    after: chain.resync,
  }
  return { route, sessions: chain.sessions }
}

/**
 * A warm-up run of each route (numbers dropped), then `rounds` rounds of all of them back to back. Each ratio is
 * taken within a round, so that a machine that slows down or speeds up affects both sides of it alike.
 */
async function runRounds(
  routes: Route[],
  rounds: number,
  warmupSeconds: number,
  afterRun: (route: Route) => void = () => {},
): Promise<Map<string, LoadResult[]>> {
  const results = new Map<string, LoadResult[]>(routes.map(({ name }) => [name, []]))
  const run = async (route: Route, load: LoadOptions) => {
    const result = await runLoad(load)
    if (verbose) {
      console.error(
        `${load.server.name}, ${route.name}, ${load.durationSeconds} s: ${Math.round(result.requestsPerSecond)} req/s, ` +
          `p99 ${result.p99.toFixed(2)} ms, server ${Math.round(result.serverCpu)}%, event loop ` +
          `${Math.round(result.serverMainThreadCpu)}%, bench ${Math.round(result.clientCpu)}%, others ` +
          `${Math.round(result.otherCpu)}%${result.failures.length ? `, failures: ${result.failures.join(', ')}` : ''}`,
      )
    }
    await route.after?.()
    afterRun(route)
    return result
  }
  for (const route of routes) {
    if (!route.warmedUp) await run(route, { ...route.load, durationSeconds: warmupSeconds })
  }
  for (let round = 0; round < rounds; round++) {
    for (const route of routes) results.get(route.name)?.push(await run(route, route.load))
  }
  return results
}

/** The private key of a new key pair for the algorithm, as PEM (PKCS#8), as an operator would configure it. */
function privateKeyPem(algorithm: JwtAlgorithm): string {
  return createPrivateKey({ key: generatePrivateJwk(algorithm), format: 'jwk' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString()
}

/** `count` access tokens of the signed-in session, minted by the server in batches; and the server's time per token. */
async function mintTokens(server: ServerProcess, headers: Record<string, string>, count: number) {
  const tokens: string[] = []
  const start = performance.now()
  while (tokens.length < count) {
    const batch = Math.min(MINT_BATCH, count - tokens.length)
    const { tokens: minted } = await postJson(server, '/bench/mint', { count: batch }, headers)
    tokens.push(...(minted as string[]))
  }
  return { tokens, microsPerToken: ((performance.now() - start) * 1000) / count }
}

async function main() {
  const startedAt = performance.now()
  tempDir = mkdtempSync(join(os.tmpdir(), 'tessera-bench-'))
  const dir = tempDir
  const baseEnv = (database: string): Record<string, string> => {
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
      // Silent, as logging every request would be measured too; BENCH_LOG_LEVEL=error shows why a server failed.
      LOG_LEVEL: params.logLevel,
      DATABASE_URL: join(dir, database),
      ...NO_RATE_LIMITS,
    }
    // The production argon2 parameters, unless the caller set others to see their cost.
    for (const name of ['ARGON2_MEMORY_KIB', 'ARGON2_ITERATIONS', 'ARGON2_PARALLELISM']) {
      const value = process.env[name]
      if (value) env[name] = value
    }
    return env
  }
  const secret = () => randomBytes(36).toString('base64url')
  const env = { ...baseEnv('tessera.db'), JWT_SECRET: secret() }
  const config = loadConfig(env)
  const { connections, durationSeconds, rounds } = params
  const section = {
    rounds: params.sectionRounds,
    durationSeconds: params.sectionDurationSeconds,
    warmupSeconds: params.sectionWarmupSeconds,
  }

  const bare = await startServer('bare Fastify', join(import.meta.dirname, 'bare-server.ts'))
  servers.push(bare)
  const tessera = await startTessera('Tessera', env)

  // Tessera's peak RSS per phase: read VmHWM at the end of each run, then reset it for the next.
  const peaks = new Map<string, Memory>()
  let peakResets = true
  const endPhase = (name: string) => {
    const now = memory(tessera.pid)
    const before = peaks.get(name)
    peaks.set(name, before && before.peakMb > now.peakMb ? before : now)
    peakResets = resetPeakMemory(tessera.pid) && peakResets
  }

  const { credentials, headers } = await signUp(tessera)
  endPhase('startup, register, login')

  // Requests: rounds of bare, signature-only, verify-only and /auth/me back to back.
  const get = (
    server: ServerProcess,
    path: string,
    seconds: number,
    authHeaders: Record<string, string> = headers,
  ): LoadOptions => ({ server, path, headers: authHeaders, connections, durationSeconds: seconds })
  // The bare route is sent the same requests, the Authorization header included, so that a ratio counts what
  // the server does with a request, not how many bytes it reads: the token is most of them (~480 of ~560).
  const bareRoute = (seconds: number): Route => ({
    name: 'bare',
    load: { server: bare, path: '/bench/bare', headers, connections, durationSeconds: seconds },
  })
  const revocationRoutes = (
    server: ServerProcess,
    seconds: number,
    authHeaders: Record<string, string> = headers,
  ): Route[] => [
    { name: 'signature-only', load: get(server, '/bench/signature-only', seconds, authHeaders) },
    { name: 'verify-only', load: get(server, '/bench/verify-only', seconds, authHeaders) },
    { name: 'GET /auth/me', load: get(server, '/auth/me', seconds, authHeaders) },
  ]
  // Bare Fastify once more without the header: what reading a token costs a server that does nothing with it.
  const bareWithoutToken: Route = {
    name: 'bare, no token',
    load: { server: bare, path: '/bench/bare', connections, durationSeconds },
  }
  const routes = [bareRoute(durationSeconds), bareWithoutToken, ...revocationRoutes(tessera, durationSeconds)]
  const requestRuns = await runRounds(routes, rounds, params.warmupSeconds, (route) => {
    if (route.load.server === tessera) endPhase(route.name)
  })
  const bareMemory = memory(bare.pid)

  const logins = runs('logins')
    ? await loginsAndProbe(tessera, credentials, headers, config.argon2, endPhase)
    : undefined

  const finalMemory = memory(tessera.pid)
  const threads = threadNames(tessera.pid)
  await tessera.stop()

  // A section that fails (a server that cannot start, an unexpected status while signing up) is reported, and
  // the bench goes on with the next one: the numbers measured so far are not lost.
  const sectionFailures: string[] = []
  const guarded = async <T>(name: string, body: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await body()
    } catch (error) {
      sectionFailures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`)
      await Promise.allSettled(servers.filter((server) => server !== bare).map((server) => server.stop()))
      return undefined
    }
  }
  /**
   * The rounds of a section: its routes beside bare Fastify (warmed up by the requests above already, so only
   * Tessera's routes are warmed up); then the peak RSS of each route's server over its whole life (of each of
   * its processes, and their sum), and the servers stopped.
   */
  const runSection = async (sectionRoutes: Route[]): Promise<SectionResult> => {
    const bareWarm: Route = { ...bareRoute(section.durationSeconds), warmedUp: true }
    const sectionRuns = await runRounds([bareWarm, ...sectionRoutes], section.rounds, section.warmupSeconds)
    const processPeaksMb = new Map(
      sectionRoutes.map((route) => [
        route.name,
        memoryByProcess(route.load.server.pid).map((each) => each.peakMb),
      ]),
    )
    const peakMb = new Map(
      [...processPeaksMb].map(([name, peaks]) => [name, peaks.reduce((a, b) => a + b, 0)]),
    )
    const sectionServers = new Set(sectionRoutes.map((route) => route.load.server))
    await Promise.all([...sectionServers].map((server) => server.stop()))
    return { runs: sectionRuns, peakMb, processPeaksMb }
  }

  // Sessions: POST /auth/refresh in a Tessera process of its own, as every refresh writes to SQLite and leaves
  // garbage that would weigh on the runs and the peak RSS of the first process.
  const sessions = !runs('refresh')
    ? undefined
    : await guarded('sessions', async () => {
        const server = await startTessera('Tessera, sessions', {
          ...env,
          DATABASE_URL: join(dir, 'sessions.db'),
        })
        const { credentials: user } = await signUp(server)
        const refresh = await refreshRoute(server, user, 'POST /auth/refresh', section.durationSeconds)
        const { runs: refreshRuns, peakMb } = await runSection([refresh.route])
        return {
          sessions: refresh.sessions,
          runs: refreshRuns,
          peakMb: peakMb.get(refresh.route.name) ?? Number.NaN,
        }
      })

  // The same revocation routes on a server that reads the session and user from SQLite on every request.
  const cacheOff = !runs('cache-off')
    ? undefined
    : await guarded('cache off', async () => {
        const server = await startTessera('Tessera, cache off', {
          ...env,
          DATABASE_URL: join(dir, 'cache-off.db'),
          AUTH_STATE_CACHE_TTL_MS: '0',
        })
        const { headers: offHeaders } = await signUp(server)
        const { runs: offRuns, peakMb } = await runSection(
          revocationRoutes(server, section.durationSeconds, offHeaders),
        )
        return { runs: offRuns, peakMb: peakMb.get('GET /auth/me') ?? Number.NaN }
      })

  // SQLite beside PostgreSQL: each measurement on both backends in the same rounds, each in a Tessera process of
  // its own (refreshes leave garbage behind; the cache-off one needs its own setting). On PostgreSQL, a fresh
  // schema per process, and the default pool (DATABASE_POOL_SIZE).
  const backendRoute = async (backend: Backend, measurement: BackendMeasurement): Promise<Route> => {
    const name = backendRunName(backend, measurement)
    const onPostgres = backend === 'PostgreSQL'
    const server = await startTessera(`Tessera, ${name}`, {
      ...env,
      ...(measurement === 'GET /auth/me, cache off' ? { AUTH_STATE_CACHE_TTL_MS: '0' } : {}),
      DATABASE_URL: onPostgres
        ? await schemas.create()
        : join(dir, `sqlite-${BACKEND_MEASUREMENTS.indexOf(measurement)}.db`),
    })
    const { credentials: user, headers: userHeaders } = await signUp(server)
    const route =
      measurement === 'POST /auth/refresh'
        ? (await refreshRoute(server, user, name, section.durationSeconds)).route
        : { name, load: get(server, '/auth/me', section.durationSeconds, userHeaders) }
    return onPostgres ? { ...route, load: { ...route.load, databaseProcesses: ['postgres'] } } : route
  }
  const postgres = !runs('postgres')
    ? undefined
    : await guarded('PostgreSQL', async () => {
        const backendRoutes: Route[] = []
        for (const measurement of BACKEND_MEASUREMENTS) {
          for (const backend of BACKENDS) backendRoutes.push(await backendRoute(backend, measurement))
        }
        return await runSection(backendRoutes)
      })

  // Signing algorithms: one Tessera process at a time, each beside bare Fastify in the same rounds.
  const keySection = async (algorithm: JwtAlgorithm): Promise<KeyResult> => {
    const keyEnv = {
      ...baseEnv(`keys-${algorithm}.db`),
      JWT_ALGORITHM: algorithm,
      ...(isHmac(algorithm) ? { JWT_SECRET: secret() } : { JWT_PRIVATE_KEY: privateKeyPem(algorithm) }),
    }
    const server = await startTessera(`Tessera, ${algorithm}`, keyEnv)
    const { headers: keyHeaders } = await signUp(server)
    const keyRoutes: Route[] = [
      { name: 'same token', load: get(server, '/bench/verify-only', section.durationSeconds, keyHeaders) },
    ]
    let distinct: KeyResult['distinct']
    let cycle: TokenCycle | undefined
    if (runs('distinct')) {
      const { tokens, microsPerToken } = await mintTokens(server, keyHeaders, params.distinctTokens)
      cycle = tokenCycle('/bench/verify-only', tokens, connections, VERIFIED_TOKEN_CACHE_SIZE)
      keyRoutes.push({
        name: 'distinct tokens',
        load: {
          server,
          path: '/bench/verify-only',
          connections,
          durationSeconds: section.durationSeconds,
          setupClient: cycle.setupClient,
        },
      })
      distinct = { tokens: tokens.length, microsPerToken, nearRepeats: 0, responses: 0 }
    }
    const { runs: keyRuns, peakMb } = await runSection(keyRoutes)
    if (distinct && cycle) {
      distinct.nearRepeats = cycle.nearRepeats()
      distinct.responses = cycle.responses()
    }
    return { algorithm, runs: keyRuns, peakMb: peakMb.get('same token') ?? Number.NaN, distinct }
  }
  const keys: KeyResult[] = []
  for (const algorithm of runs('keys') ? algorithms : []) {
    const result = await guarded(algorithm, () => keySection(algorithm))
    if (result) keys.push(result)
  }

  // Workers: GET /auth/me on `tessera serve` with 1 and with 2 workers, as it would be deployed to scale out:
  // PostgreSQL and Redis (which carries revocations between the workers), a fresh schema and key prefix each.
  const workers = !runs('workers')
    ? undefined
    : await guarded('workers', async () => {
        const workerRoutes: Route[] = []
        for (const count of WORKER_COUNTS) {
          const server = await startServe(`Tessera, ${workersRunName(count)}`, count, {
            ...env,
            DATABASE_URL: await schemas.create(),
            REDIS_URL: redisUrl,
            REDIS_KEY_PREFIX: redisKeyPrefix(),
          })
          const { headers: workerHeaders } = await signUp(server)
          workerRoutes.push({
            name: workersRunName(count),
            load: {
              ...get(server, '/auth/me', section.durationSeconds, workerHeaders),
              databaseProcesses: ['postgres', 'redis-server'],
            },
          })
        }
        return await runSection(workerRoutes)
      })
  await bare.stop()

  printReport({
    params,
    argon2: config.argon2,
    authStateCacheTtlMs: config.authStateCacheTtlMs,
    requestRuns,
    sessions,
    bareMemory,
    peaks: [...peaks],
    peakResets,
    finalMemory,
    threads,
    logins,
    cacheOff,
    postgres,
    databasePoolSize: config.database.poolSize,
    keys: runs('keys') ? keys : undefined,
    workers,
    sectionFailures,
    elapsedSeconds: (performance.now() - startedAt) / 1000,
  })
}

/** The hash ceiling, the login sweep, and /auth/me at a fixed rate on an idle server and in a login storm. */
async function loginsAndProbe(
  tessera: ServerProcess,
  credentials: Credentials,
  headers: Record<string, string>,
  argon2: Config['argon2'],
  endPhase: (name: string) => void,
): Promise<NonNullable<BenchResults['logins']>> {
  const { cores, durationSeconds, rounds } = params
  // Timed while both servers are idle, just before the logins it is the ceiling of.
  const hashing = await timeHashing(argon2)

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
  return { hashing, loginSteps, best, probeRounds }
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
