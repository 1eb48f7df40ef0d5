// Reads the environment (and an optional .env file) into a typed, validated Config. The only module that
// touches process.env. Every bad variable is reported, one message each, before anything listens. What each
// variable accepts is declared in config.schema.ts; only the rules between variables are written here.
import { existsSync, readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { HMAC_KEY_BYTES, type JwtAlgorithm, SETTINGS, type SettingValues } from './config.schema.ts'
import { webhookSecretsIn } from './formats.ts'
import { type Env, readSettings } from './setting.ts'

export type Config = {
  env: SettingValues['NODE_ENV']
  host: string
  port: number
  workers: number
  publicUrl: string
  logLevel: SettingValues['LOG_LEVEL']
  /** GET /metrics: on a port of its own (METRICS_PORT), on the API port behind METRICS_TOKEN, or neither. */
  metrics: { port: number | undefined; host: string; token: string | undefined }
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
    /** JWT_SECRET_PREVIOUS: verifies, never signs (a rotation of JWT_SECRET without refusing live tokens). */
    previousSecret: string | undefined
    /** PEM or JWK text of a configured private key (from JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE). */
    privateKey: string | undefined
    issuer: string
    audience: string
    accessTokenTtlSeconds: number
    clockLeewaySeconds: number
    maxTokenBytes: number
  }
  keyEncryptionSecret: string | undefined
  /** KEY_ENCRYPTION_SECRET_PREVIOUS: opens what is still sealed under it, never seals. */
  keyEncryptionSecretPrevious: string | undefined
  keysReloadIntervalSeconds: number
  authStateCacheTtlMs: number
  sessions: {
    absoluteTtlSeconds: number
    idleTtlSeconds: number
    reuseWindowSeconds: number
    purgeIntervalSeconds: number
  }
  /** The security event log: EVENTS_RETENTION_DAYS (0: kept for ever). */
  events: { retentionDays: number }
  /** The refresh and device cookies of the cookie mode: Secure, and their SameSite attribute. */
  cookies: CookiePolicy
  /** CORS_ORIGINS: the exact origins whose scripts may call the API (with credentials). */
  corsOrigins: string[]
  /** DOCS_ENABLED: /docs serves the API reference. */
  docsEnabled: boolean
  /** ACCOUNT_PAGE_ENABLED: /account serves the account page. */
  accountPageEnabled: boolean
  /** Fastify's trustProxy: false, true (every hop), a number of hops, or addresses/CIDRs of the proxies. */
  trustProxy: boolean | string | ((address: string, hop: number) => boolean)
  argon2: { memoryKib: number; iterations: number; parallelism: number }
  /** RESERVED_USERNAMES: names only the CLI may register. */
  reservedUsernames: string[]
  /** USERNAME_PATTERN (unset: the built-in rule) and USERNAME_MAX_LENGTH: what a new username must be. */
  usernames: { pattern: string | undefined; maxLength: number }
  webhooks: WebhooksConfig
  recovery: RecoveryConfig
  lockout: LockoutConfig
  breachedPasswords: BreachedPasswordsConfig
  mfa: MfaConfig
  /** What is allowed but likely a mistake: the server logs each at start (loadConfig decides them). */
  warnings: string[]
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
  passwordChangePerUser: number
  passwordChangePerIp: number
  passwordResetPerIp: number
  passwordResetPerUsername: number
  mfaPerIp: number
  mfaPerAccount: number
}

/** Account recovery and lockout (issue 14). */
export type RecoveryConfig = {
  resetTtlSeconds: number
  /** PUBLIC_URL + PASSWORD_RESET_PATH: the reset link is this + `#token=` + the token. */
  resetPageUrl: string
  /** Whether POST /auth/password-reset/request is served (PASSWORD_RESET_WEBHOOK_URL is set). */
  selfService: boolean
}

export type LockoutConfig = {
  freeFailures: number
  /** 0: lockout off. */
  baseSeconds: number
  maxSeconds: number
  resetSeconds: number
  deviceTokenTtlSeconds: number
}

export type CookiePolicy = { secure: boolean; sameSite: SettingValues['COOKIE_SAME_SITE'] }

/** A second factor (issue 15). */
export type MfaConfig = {
  /** MFA_REQUIRED_ROLES: roles that act only in sessions signed in with a second factor. */
  requiredRoles: string[]
  totpIssuer: string
}

/** PWNED_PASSWORDS_URL, when set. */
export type BreachedPasswordsConfig = { url: string; timeoutMs: number } | undefined

/** Where webhook deliveries go, looked up by name when a delivery is sent; empty without WEBHOOK_URL. */
export type WebhookEndpointConfig = {
  /** The outbox's name for it: `events` (WEBHOOK_URL). */
  name: string
  url: string
  /** `whsec_` secrets; each signs every delivery (several while rotating). */
  secrets: string[]
  /** The event types fanned out to it: names, `family.*` or `*`; none for an endpoint written to by name only. */
  events: string[]
}

export type WebhooksConfig = {
  endpoints: WebhookEndpointConfig[]
  maxAttempts: number
  retryBaseSeconds: number
  retryMaxSeconds: number
  timeoutMs: number
  pollIntervalMs: number
  retentionDays: number
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

/**
 * `serving`: the configuration is for `serve`, which issues tokens, so it needs what only a server needs
 * (PUBLIC_URL in production); the other commands run with the same environment minus those.
 */
export function loadConfig(env: Env, { serving = false }: { serving?: boolean } = {}): Config {
  const { values: v, problems, invalid } = readSettings(SETTINGS, env)

  const host = v.HOST
  // A derived default is not checked: if it is wrong, the variable it comes from was already reported.
  const publicUrl = withoutTrailingSlash(
    v.PUBLIC_URL ?? `http://${host.includes(':') ? `[${host}]` : host}:${v.PORT}`,
  )
  const algorithm = v.JWT_ALGORITHM
  const hmac = algorithm.startsWith('HS')
  const secret = v.JWT_SECRET
  const previousSecret = v.JWT_SECRET_PREVIOUS
  const privateKey = readPrivateKey(v.JWT_PRIVATE_KEY, v.JWT_PRIVATE_KEY_FILE, problems)
  if (!invalid.has('JWT_ALGORITHM')) {
    if (secret !== undefined && !hmac)
      problems.push(`JWT_SECRET is for HS256/384/512; JWT_ALGORITHM is ${algorithm}`)
    // Refused rather than ignored: a key pair rotates with `tessera keys rotate`, whose retired key verifies on
    // its own, and a secret silently unused would let an operator believe old HS tokens are still accepted.
    if (previousSecret !== undefined && !hmac) {
      problems.push(
        `JWT_SECRET_PREVIOUS is for HS256/384/512; JWT_ALGORITHM is ${algorithm}, whose keys rotate with ` +
          '`npx tessera keys rotate` (the retired key verifies until its tokens expire)',
      )
    }
    if (privateKey !== undefined && hmac)
      problems.push(`JWT_PRIVATE_KEY is for EdDSA, ES256 and RS256; JWT_ALGORITHM is ${algorithm}`)
    // JWT_SECRET's declaration asks for 32 bytes, enough for HS256; the longer hashes need longer keys.
    const needed = HMAC_KEY_BYTES[algorithm]
    for (const [name, value] of [
      ['JWT_SECRET', secret],
      ['JWT_SECRET_PREVIOUS', hmac ? previousSecret : undefined],
    ] as const) {
      if (value !== undefined && !invalid.has(name) && needed && Buffer.byteLength(value) < needed) {
        problems.push(
          `${name} must be at least ${needed} bytes (UTF-8) for ${algorithm}, the size of its hash ` +
            '(RFC 7518, section 3.2); generate one with `openssl rand -base64 48` (64 characters on one line)',
        )
      }
    }
  }
  // Never echoed: a message naming the value would print a secret.
  if (previousSecret !== undefined && previousSecret === secret) {
    problems.push('JWT_SECRET_PREVIOUS is the same as JWT_SECRET: it must be the secret being rotated out')
  }
  const keyEncryptionSecretPrevious = v.KEY_ENCRYPTION_SECRET_PREVIOUS
  if (keyEncryptionSecretPrevious !== undefined) {
    if (v.KEY_ENCRYPTION_SECRET === undefined && !invalid.has('KEY_ENCRYPTION_SECRET')) {
      problems.push(
        'KEY_ENCRYPTION_SECRET_PREVIOUS needs KEY_ENCRYPTION_SECRET: the new secret, under which everything is sealed',
      )
    } else if (keyEncryptionSecretPrevious === v.KEY_ENCRYPTION_SECRET) {
      problems.push(
        'KEY_ENCRYPTION_SECRET_PREVIOUS is the same as KEY_ENCRYPTION_SECRET: it must be the secret being rotated out',
      )
    }
  }
  // Without it, the issuer would be http://HOST:PORT, the address a proxy reaches, and the refresh cookie of
  // a server listening on 127.0.0.1 behind that proxy would not be Secure.
  if (serving && v.NODE_ENV === 'production' && v.PUBLIC_URL === undefined && !invalid.has('PUBLIC_URL')) {
    problems.push(
      "PUBLIC_URL must be set with NODE_ENV=production: it is the tokens' issuer (unless JWT_ISSUER is set) " +
        `and decides whether the refresh cookie is Secure; the default, ${publicUrl}, is the listening ` +
        'address, not the URL clients use (`https://auth.example.com`)',
    )
  }

  // Browsers refuse Secure cookies over plain HTTP, so a localhost development server needs them off.
  const cookieSecure =
    v.COOKIE_SECURE ?? !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(publicUrl)
  if (v.COOKIE_SAME_SITE === 'none' && !cookieSecure) {
    problems.push(
      'COOKIE_SAME_SITE=none needs Secure cookies (browsers refuse SameSite=None without Secure): serve over ' +
        'https (PUBLIC_URL) and leave COOKIE_SECURE unset or true',
    )
  }
  const corsOrigins = listOf(v.CORS_ORIGINS)

  const databaseUrl = v.DATABASE_URL
  if (v.WORKERS > 1 && databaseUrl === ':memory:') {
    problems.push('WORKERS above 1 needs a database they can share: DATABASE_URL is :memory:')
  }
  if (v.METRICS_PORT !== undefined && v.METRICS_PORT === v.PORT) {
    problems.push('METRICS_PORT must differ from PORT: set METRICS_TOKEN to serve /metrics on the API port')
  }
  // Each worker would answer with its own counts, a different one at each scrape: the primary adds them up
  // on METRICS_PORT instead.
  if (v.METRICS_TOKEN !== undefined && v.WORKERS > 1) {
    problems.push(
      'METRICS_TOKEN serves the metrics of one process; with WORKERS above 1 use METRICS_PORT, where the ' +
        'primary serves those of all the workers',
    )
  }
  if (isPostgresUrl(databaseUrl) && !URL.canParse(databaseUrl)) {
    // Not echoed: the URL may hold a password.
    problems.push('DATABASE_URL looks like a PostgreSQL URL but cannot be parsed')
  }
  // A secret already reported as malformed is not reported again as missing.
  if (v.WEBHOOK_URL !== undefined && v.WEBHOOK_SECRET === undefined && !invalid.has('WEBHOOK_SECRET')) {
    problems.push('WEBHOOK_URL needs WEBHOOK_SECRET: deliveries are always signed')
  }
  if (
    v.PASSWORD_RESET_WEBHOOK_URL !== undefined &&
    v.PASSWORD_RESET_WEBHOOK_SECRET === undefined &&
    !invalid.has('PASSWORD_RESET_WEBHOOK_SECRET')
  ) {
    problems.push(
      'PASSWORD_RESET_WEBHOOK_URL needs PASSWORD_RESET_WEBHOOK_SECRET: deliveries are always signed',
    )
  }
  if (problems.length > 0) throw new ConfigError(problems)

  const warnings: string[] = []
  if (v.PUBLIC_URL === undefined && v.JWT_ISSUER === undefined && isPostgresUrl(databaseUrl)) {
    // Instances sharing a PostgreSQL database are meant to be interchangeable; each would issue its own `iss`.
    warnings.push(
      `Neither PUBLIC_URL nor JWT_ISSUER is set: tokens are issued by ${publicUrl}, this instance's own ` +
        'address. Another instance on this PostgreSQL database at another address refuses them (401). Set ' +
        'PUBLIC_URL to the one URL clients use, the same on every instance (docs/deployment.md).',
    )
  }

  return {
    env: v.NODE_ENV,
    host,
    port: v.PORT,
    workers: v.WORKERS,
    publicUrl,
    logLevel: v.LOG_LEVEL,
    metrics: { port: v.METRICS_PORT, host: v.METRICS_HOST, token: v.METRICS_TOKEN },
    database: {
      url: databaseUrl,
      busyTimeoutMs: v.DATABASE_BUSY_TIMEOUT_MS,
      poolSize: v.DATABASE_POOL_SIZE,
      connectTimeoutMs: v.DATABASE_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: v.DATABASE_STATEMENT_TIMEOUT_MS,
    },
    redis:
      v.REDIS_URL === undefined
        ? undefined
        : { url: v.REDIS_URL, keyPrefix: v.REDIS_KEY_PREFIX, commandTimeoutMs: v.REDIS_COMMAND_TIMEOUT_MS },
    rateLimits: {
      windowSeconds: v.RATE_LIMIT_WINDOW_SECONDS,
      loginPerIp: v.RATE_LIMIT_LOGIN_PER_IP,
      loginPerUsername: v.RATE_LIMIT_LOGIN_PER_USERNAME,
      registerPerIp: v.RATE_LIMIT_REGISTER_PER_IP,
      registerPerUsername: v.RATE_LIMIT_REGISTER_PER_USERNAME,
      refreshPerIp: v.RATE_LIMIT_REFRESH_PER_IP,
      refreshPerSession: v.RATE_LIMIT_REFRESH_PER_SESSION,
      passwordChangePerUser: v.RATE_LIMIT_PASSWORD_CHANGE_PER_USER,
      passwordChangePerIp: v.RATE_LIMIT_PASSWORD_CHANGE_PER_IP,
      passwordResetPerIp: v.RATE_LIMIT_PASSWORD_RESET_PER_IP,
      passwordResetPerUsername: v.RATE_LIMIT_PASSWORD_RESET_PER_USERNAME,
      mfaPerIp: v.RATE_LIMIT_MFA_PER_IP,
      mfaPerAccount: v.RATE_LIMIT_MFA_PER_ACCOUNT,
    },
    jwt: {
      algorithm,
      secret,
      previousSecret,
      privateKey,
      issuer: v.JWT_ISSUER === undefined ? publicUrl : withoutTrailingSlash(v.JWT_ISSUER),
      audience: v.JWT_AUDIENCE,
      accessTokenTtlSeconds: v.ACCESS_TOKEN_TTL_SECONDS,
      clockLeewaySeconds: v.JWT_CLOCK_LEEWAY_SECONDS,
      maxTokenBytes: v.JWT_MAX_TOKEN_BYTES,
    },
    keyEncryptionSecret: v.KEY_ENCRYPTION_SECRET,
    keyEncryptionSecretPrevious,
    keysReloadIntervalSeconds: v.KEYS_RELOAD_INTERVAL_SECONDS,
    authStateCacheTtlMs: v.AUTH_STATE_CACHE_TTL_MS,
    sessions: {
      absoluteTtlSeconds: v.SESSION_ABSOLUTE_TTL_SECONDS,
      idleTtlSeconds: v.SESSION_IDLE_TTL_SECONDS,
      reuseWindowSeconds: v.REFRESH_REUSE_WINDOW_SECONDS,
      purgeIntervalSeconds: v.SESSION_PURGE_INTERVAL_SECONDS,
    },
    events: { retentionDays: v.EVENTS_RETENTION_DAYS },
    cookies: { secure: cookieSecure, sameSite: v.COOKIE_SAME_SITE },
    corsOrigins,
    docsEnabled: v.DOCS_ENABLED,
    accountPageEnabled: v.ACCOUNT_PAGE_ENABLED ?? v.NODE_ENV !== 'production',
    trustProxy: trustProxy(v.TRUST_PROXY),
    argon2: {
      memoryKib: v.ARGON2_MEMORY_KIB,
      iterations: v.ARGON2_ITERATIONS,
      parallelism: v.ARGON2_PARALLELISM,
    },
    reservedUsernames: listOf(v.RESERVED_USERNAMES),
    usernames: { pattern: v.USERNAME_PATTERN, maxLength: v.USERNAME_MAX_LENGTH },
    webhooks: {
      endpoints: (v.WEBHOOK_URL === undefined
        ? []
        : [
            {
              name: 'events',
              url: v.WEBHOOK_URL,
              secrets: webhookSecretsIn(v.WEBHOOK_SECRET ?? ''),
              events: listOf(v.WEBHOOK_EVENTS),
            },
          ]
      ).concat(
        v.PASSWORD_RESET_WEBHOOK_URL === undefined
          ? []
          : // Takes no events: only the reset links written to it by name (outbox.enqueueTo).
            [
              {
                name: PASSWORD_RESET_ENDPOINT,
                url: v.PASSWORD_RESET_WEBHOOK_URL,
                secrets: webhookSecretsIn(v.PASSWORD_RESET_WEBHOOK_SECRET ?? ''),
                events: [],
              },
            ],
      ),
      maxAttempts: v.WEBHOOK_MAX_ATTEMPTS,
      retryBaseSeconds: v.WEBHOOK_RETRY_BASE_SECONDS,
      retryMaxSeconds: v.WEBHOOK_RETRY_MAX_SECONDS,
      timeoutMs: v.WEBHOOK_TIMEOUT_MS,
      pollIntervalMs: v.WEBHOOK_POLL_INTERVAL_MS,
      retentionDays: v.WEBHOOK_RETENTION_DAYS,
    },
    recovery: {
      resetTtlSeconds: v.PASSWORD_RESET_TTL_SECONDS,
      resetPageUrl: `${withoutTrailingSlash(publicUrl)}${v.PASSWORD_RESET_PATH}`,
      selfService: v.PASSWORD_RESET_WEBHOOK_URL !== undefined,
    },
    lockout: {
      freeFailures: v.LOCKOUT_FREE_FAILURES,
      baseSeconds: v.LOCKOUT_BASE_SECONDS,
      maxSeconds: Math.max(v.LOCKOUT_MAX_SECONDS, v.LOCKOUT_BASE_SECONDS),
      resetSeconds: v.LOCKOUT_RESET_HOURS * 3600,
      deviceTokenTtlSeconds: v.DEVICE_TOKEN_TTL_DAYS * 86_400,
    },
    breachedPasswords:
      v.PWNED_PASSWORDS_URL === undefined
        ? undefined
        : { url: v.PWNED_PASSWORDS_URL, timeoutMs: v.PWNED_PASSWORDS_TIMEOUT_MS },
    mfa: { requiredRoles: listOf(v.MFA_REQUIRED_ROLES), totpIssuer: v.TOTP_ISSUER },
    warnings,
  }
}

/** The webhook endpoint of self-service reset links (PASSWORD_RESET_WEBHOOK_URL). */
export const PASSWORD_RESET_ENDPOINT = 'password_reset'

const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, '')

/** A comma-separated list, without blanks (a lone `,` is an empty list). */
const listOf = (text: string) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')

function trustProxy(value: string): Config['trustProxy'] {
  if (value === 'false') return false
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
