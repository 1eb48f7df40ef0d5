// Tessera as the bench configures and drives it: the environment of its processes, and the HTTP calls that set a
// run up (sign up, log in, mint tokens, start sessions).
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Config, loadConfig } from '../../src/config/load-config.ts'
import { registerAndLogIn } from '../../test/helpers/sign-up.ts'
import { MINT_BATCH } from '../servers/bench-response.ts'
import type { ServerProcess } from './processes.ts'
import type { LoadOptions } from './wrk.ts'

/**
 * Every rate limit off, in every Tessera process the bench starts: the bench measures the server, not the
 * limits, and its login sweep, refresh runs and sign-ups would otherwise be answered 429 within seconds.
 */
const NO_RATE_LIMITS = {
  RATE_LIMIT_LOGIN_PER_IP: '0',
  RATE_LIMIT_LOGIN_PER_USERNAME: '0',
  RATE_LIMIT_REGISTER_PER_IP: '0',
  RATE_LIMIT_REGISTER_PER_USERNAME: '0',
  RATE_LIMIT_REFRESH_PER_IP: '0',
  RATE_LIMIT_REFRESH_PER_SESSION: '0',
}

export const jwtSecret = () => randomBytes(36).toString('base64url')

/**
 * The environment of a Tessera process, and nothing else of the bench's: production, on 127.0.0.1 port 0, a
 * fresh SQLite file `<file>.db` in `dir`, HS256 with a random JWT_SECRET, the rate limits off, and the production
 * argon2 parameters unless the caller set ARGON2_* to see the cost of others.
 */
export function tesseraEnv(dir: string, file: string, logLevel: string): Record<string, string> {
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    // Silent, as logging every request would be measured too; BENCH_LOG_LEVEL=error shows why a server failed.
    LOG_LEVEL: logLevel,
    DATABASE_URL: join(dir, `${file}.db`),
    JWT_SECRET: jwtSecret(),
    ...NO_RATE_LIMITS,
  }
  for (const name of ['ARGON2_MEMORY_KIB', 'ARGON2_ITERATIONS', 'ARGON2_PARALLELISM']) {
    const value = process.env[name]
    if (value) env[name] = value
  }
  return env
}

/** The configuration the Tessera processes read from that environment (argon2 parameters, cache TTL, pool). */
export const tesseraConfig = (dir: string): Config => loadConfig(tesseraEnv(dir, 'config', 'silent'))

/** A POST of a JSON body to `server`: the status and the parsed answer, whatever the status. */
async function post(
  server: ServerProcess,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/** The answer of a POST to `server`; throws unless its status is 2xx. */
export async function postJson(
  server: ServerProcess,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const { status, body: json } = await post(server, path, body, headers)
  if (status < 200 || status > 299)
    throw new Error(`POST ${path} answered ${status}: ${JSON.stringify(json)}`)
  return json
}

export type Credentials = { username: string; password: string }
export type User = { credentials: Credentials; headers: Record<string, string> }

/**
 * Registers the bench user; returns its credentials and the headers of a fresh login's access token. The sign-up
 * is the tests' (test/helpers/sign-up.ts, which imports nothing), so that both follow the API's one form of it.
 */
export async function signUp(server: ServerProcess): Promise<User> {
  const credentials: Credentials = { username: 'bench-user', password: randomBytes(12).toString('hex') }
  const { accessToken } = await registerAndLogIn((path, body) => post(server, path, body), {
    ...credentials,
    firstName: 'Bench',
    lastName: 'User',
  })
  return { credentials, headers: { authorization: `Bearer ${accessToken}` } }
}

/**
 * `count` access tokens of the signed-in session (`/bench/mint`), or refresh tokens of new sessions of the user
 * (`/bench/sessions`), issued by the server in batches; and the server's wall time per token.
 */
export async function issue(
  server: ServerProcess,
  path: '/bench/mint' | '/bench/sessions',
  headers: Record<string, string>,
  count: number,
) {
  const tokens: string[] = []
  const start = performance.now()
  while (tokens.length < count) {
    const batch = Math.min(MINT_BATCH, count - tokens.length)
    const { tokens: issued } = await postJson(server, path, { count: batch }, headers)
    tokens.push(...(issued as string[]))
  }
  return { tokens, microsPerToken: ((performance.now() - start) * 1000) / count }
}

/** Writes tokens one a line, for a wrk script to read. */
export function writeTokens(file: string, tokens: string[]): string {
  writeFileSync(file, `${tokens.join('\n')}\n`)
  return file
}

/**
 * The load of `POST /auth/refresh` on `server`, for a run of `seconds`: every run on sessions of its own, started
 * just before it (`sessions` of them, as the signed-in user of `headers`), since a run that stops spends tokens
 * unseen. The refresh.lua script chains each session's tokens (./lua/refresh.lua).
 */
export async function refreshLoad(
  server: ServerProcess,
  headers: Record<string, string>,
  options: {
    file: string
    sessions: number
    connections: number
    seconds: number
    databaseProcesses: string[]
  },
): Promise<LoadOptions> {
  const { tokens } = await issue(server, '/bench/sessions', headers, options.sessions)
  writeTokens(options.file, tokens)
  return {
    server,
    path: '/auth/refresh',
    method: 'POST',
    connections: options.connections,
    durationSeconds: options.seconds,
    databaseProcesses: options.databaseProcesses,
    script: { kind: 'refresh', file: options.file },
  }
}
