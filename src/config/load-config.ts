// Reads the environment (and an optional .env file) into a typed, validated Config. The only module that
// touches process.env. Every bad variable is reported, one message each, before anything listens.
import { existsSync, readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { JWT_ALGORITHMS, type JwtAlgorithm } from '../keys/algorithms.ts'
import { ENV_VARS, type EnvVar, type EnvVarName } from './config.schema.ts'

export type Config = {
  env: 'development' | 'test' | 'production'
  host: string
  port: number
  workers: number
  publicUrl: string
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  database: {
    url: string
    busyTimeoutMs: number
    poolSize: number
    connectTimeoutMs: number
    statementTimeoutMs: number
  }
  redis: { url: string; keyPrefix: string; commandTimeoutMs: number } | undefined
  rateLimits: RateLimits
  jwt: {
    algorithm: JwtAlgorithm
    secret: string | undefined
    /** PEM or JWK text of a configured private key (from JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE). */
    privateKey: string | undefined
    issuer: string
    audience: string
    accessTokenTtlSeconds: number
    clockLeewaySeconds: number
    maxTokenBytes: number
  }
  keyEncryptionSecret: string | undefined
  keysReloadIntervalSeconds: number
  authStateCacheTtlMs: number
  sessions: {
    absoluteTtlSeconds: number
    idleTtlSeconds: number
    reuseWindowSeconds: number
    purgeIntervalSeconds: number
  }
  cookieSecure: boolean
  /** Fastify's trustProxy: false, true (every hop), a number of hops, or addresses/CIDRs of the proxies. */
  trustProxy: boolean | string | ((address: string, hop: number) => boolean)
  argon2: { memoryKib: number; iterations: number; parallelism: number }
}

/** Requests allowed per RATE_LIMIT_WINDOW_SECONDS; 0 turns a limit off. */
export type RateLimits = {
  windowSeconds: number
  loginPerIp: number
  loginPerUsername: number
  registerPerIp: number
  registerPerUsername: number
  refreshPerIp: number
  refreshPerSession: number
}

/** Whether DATABASE_URL names a PostgreSQL database (anything else is an SQLite file, or `:memory:`). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url)
}

export class ConfigError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

type Env = Readonly<Record<string, string | undefined>>

export function loadConfig(env: Env): Config {
  const problems: string[] = []
  const raw = (name: EnvVarName): string | undefined => {
    const value = env[name]
    if (value !== undefined && value !== '') return value
    const spec: EnvVar | undefined = ENV_VARS.find((v) => v.name === name)
    return spec?.default
  }
  const oneOf = <T extends string>(name: EnvVarName, allowed: readonly T[]): T => {
    const value = raw(name) as T
    if (!allowed.includes(value))
      problems.push(`${name} must be one of ${allowed.join(', ')}; got "${value}"`)
    return value
  }
  const integer = (name: EnvVarName, min: number, max: number): number => {
    const value = raw(name) ?? ''
    const parsed = Number(value)
    if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}; got "${value}"`)
    }
    return parsed
  }
  // A derived fallback is not checked: if it is wrong, the variable it comes from was already reported.
  const url = (name: EnvVarName, fallback: string): string => {
    const value = raw(name)
    if (value !== undefined && !URL.canParse(value))
      problems.push(`${name} must be an absolute URL; got "${value}"`)
    return (value ?? fallback).replace(/\/+$/, '')
  }

  const boolean = (name: EnvVarName, fallback: boolean): boolean => {
    const value = raw(name)
    if (value === undefined) return fallback
    if (value === 'true' || value === '1') return true
    if (value === 'false' || value === '0') return false
    problems.push(`${name} must be true or false; got "${value}"`)
    return fallback
  }

  const nodeEnv = oneOf('NODE_ENV', ['development', 'test', 'production'] as const)
  const host = raw('HOST') as string
  const port = integer('PORT', 0, 65535)
  const publicUrl = url('PUBLIC_URL', `http://${host.includes(':') ? `[${host}]` : host}:${port}`)
  const algorithm = oneOf('JWT_ALGORITHM', JWT_ALGORITHMS)
  const hmac = algorithm.startsWith('HS')
  const secret = raw('JWT_SECRET')
  if (secret !== undefined && secret.length < 32) {
    problems.push('JWT_SECRET must be at least 32 characters; generate one with `openssl rand -base64 48`')
  }
  if (secret !== undefined && !hmac)
    problems.push(`JWT_SECRET is for HS256/384/512; JWT_ALGORITHM is ${algorithm}`)
  const privateKey = readPrivateKey(raw('JWT_PRIVATE_KEY'), raw('JWT_PRIVATE_KEY_FILE'), problems)
  if (privateKey !== undefined && hmac) {
    problems.push(`JWT_PRIVATE_KEY is for EdDSA, ES256 and RS256; JWT_ALGORITHM is ${algorithm}`)
  }
  const keyEncryptionSecret = raw('KEY_ENCRYPTION_SECRET')
  if (keyEncryptionSecret !== undefined && keyEncryptionSecret.length < 32) {
    problems.push('KEY_ENCRYPTION_SECRET must be at least 32 characters')
  }

  const redisUrl = raw('REDIS_URL')
  if (redisUrl !== undefined && !/^rediss?:\/\/[^/]/.test(redisUrl)) {
    // Not echoed: the URL may hold a password.
    problems.push('REDIS_URL must be a redis:// or rediss:// URL')
  }
  const databaseUrl = raw('DATABASE_URL') as string
  const workers = integer('WORKERS', 1, 256)
  if (workers > 1 && databaseUrl === ':memory:') {
    problems.push('WORKERS above 1 needs a database they can share: DATABASE_URL is :memory:')
  }
  if (isPostgresUrl(databaseUrl) && !URL.canParse(databaseUrl)) {
    problems.push('DATABASE_URL looks like a PostgreSQL URL but cannot be parsed')
  }

  const config: Config = {
    env: nodeEnv,
    host,
    port,
    workers,
    publicUrl,
    logLevel: oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    database: {
      url: databaseUrl,
      busyTimeoutMs: integer('DATABASE_BUSY_TIMEOUT_MS', 0, 600_000),
      poolSize: integer('DATABASE_POOL_SIZE', 1, 1000),
      connectTimeoutMs: integer('DATABASE_CONNECT_TIMEOUT_MS', 100, 600_000),
      statementTimeoutMs: integer('DATABASE_STATEMENT_TIMEOUT_MS', 100, 600_000),
    },
    redis:
      redisUrl === undefined
        ? undefined
        : {
            url: redisUrl,
            keyPrefix: raw('REDIS_KEY_PREFIX') as string,
            commandTimeoutMs: integer('REDIS_COMMAND_TIMEOUT_MS', 10, 60_000),
          },
    rateLimits: {
      windowSeconds: integer('RATE_LIMIT_WINDOW_SECONDS', 1, 86_400),
      loginPerIp: integer('RATE_LIMIT_LOGIN_PER_IP', 0, 1_000_000),
      loginPerUsername: integer('RATE_LIMIT_LOGIN_PER_USERNAME', 0, 1_000_000),
      registerPerIp: integer('RATE_LIMIT_REGISTER_PER_IP', 0, 1_000_000),
      registerPerUsername: integer('RATE_LIMIT_REGISTER_PER_USERNAME', 0, 1_000_000),
      refreshPerIp: integer('RATE_LIMIT_REFRESH_PER_IP', 0, 1_000_000),
      refreshPerSession: integer('RATE_LIMIT_REFRESH_PER_SESSION', 0, 1_000_000),
    },
    jwt: {
      algorithm,
      secret,
      privateKey,
      issuer: url('JWT_ISSUER', publicUrl),
      audience: raw('JWT_AUDIENCE') as string,
      accessTokenTtlSeconds: integer('ACCESS_TOKEN_TTL_SECONDS', 30, 86_400),
      clockLeewaySeconds: integer('JWT_CLOCK_LEEWAY_SECONDS', 0, 300),
      maxTokenBytes: integer('JWT_MAX_TOKEN_BYTES', 512, 65_536),
    },
    keyEncryptionSecret,
    keysReloadIntervalSeconds: integer('KEYS_RELOAD_INTERVAL_SECONDS', 1, 86_400),
    authStateCacheTtlMs: integer('AUTH_STATE_CACHE_TTL_MS', 0, 60_000),
    sessions: {
      absoluteTtlSeconds: integer('SESSION_ABSOLUTE_TTL_SECONDS', 300, 31_536_000),
      idleTtlSeconds: integer('SESSION_IDLE_TTL_SECONDS', 300, 31_536_000),
      reuseWindowSeconds: integer('REFRESH_REUSE_WINDOW_SECONDS', 0, 60),
      purgeIntervalSeconds: integer('SESSION_PURGE_INTERVAL_SECONDS', 0, 604_800),
    },
    // Browsers refuse Secure cookies over plain HTTP, so a localhost development server needs them off.
    cookieSecure: boolean(
      'COOKIE_SECURE',
      !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(publicUrl),
    ),
    trustProxy: trustProxy(raw('TRUST_PROXY')),
    argon2: {
      memoryKib: integer('ARGON2_MEMORY_KIB', 19_456, 4_194_304),
      iterations: integer('ARGON2_ITERATIONS', 2, 100),
      parallelism: integer('ARGON2_PARALLELISM', 1, 16),
    },
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

function trustProxy(value: string | undefined): Config['trustProxy'] {
  if (value === undefined || value === 'false') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    return (_address, hop) => hop < hops
  }
  return value
}

function readPrivateKey(inline: string | undefined, file: string | undefined, problems: string[]) {
  if (inline !== undefined && file !== undefined) {
    problems.push('Set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE, not both')
    return undefined
  }
  if (file === undefined) return inline
  try {
    return readFileSync(file, 'utf8')
  } catch {
    problems.push(`JWT_PRIVATE_KEY_FILE cannot be read: ${file}`)
    return undefined
  }
}

/** The process environment, over the values of a .env file in the working directory if there is one. */
export function readProcessEnv(dotenvPath = '.env'): Env {
  const fromFile = existsSync(dotenvPath) ? parseEnv(readFileSync(dotenvPath, 'utf8')) : {}
  return { ...fromFile, ...process.env }
}
