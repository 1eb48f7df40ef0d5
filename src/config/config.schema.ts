// Every environment variable Tessera reads, declared once: its kind, range or choices, default and meaning.
// loadConfig reads values and words its error messages from these entries, and the README's configuration
// table is generated from them (`npm run docs:config`), so none of them can drift.
import type { LogLevel } from '../lib/logger.ts'
import {
  EVENT_FILTERS,
  ORIGINS,
  URL_PATH,
  USERNAME_REGEXP,
  WEBHOOK_SECRET_HINT,
  WEBHOOK_SECRETS,
} from './formats.ts'
import type { Setting, ValuesOf } from './setting.ts'

/** The signing algorithms Tessera supports (src/keys/algorithms.ts knows how to make and use their keys). */
export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'EdDSA', 'ES256', 'RS256'] as const
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number]

/** RFC 7518, section 3.2: an HMAC key at least as long as its hash's output, in bytes. */
export const HMAC_KEY_BYTES: Readonly<Partial<Record<JwtAlgorithm, number>>> = {
  HS256: 32,
  HS384: 48,
  HS512: 64,
}

export const LOG_LEVELS = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
] as const satisfies readonly LogLevel[]

const RATE_LIMIT = { kind: 'integer', min: 0, max: 1_000_000 } as const

export const SETTINGS = {
  NODE_ENV: {
    kind: 'enum',
    choices: ['development', 'test', 'production'],
    default: 'development',
    description:
      'Production refuses to start without PUBLIC_URL, and never generates or replaces a signing key: it refuses to start without one configured or stored.',
  },
  HOST: {
    kind: 'string',
    default: '127.0.0.1',
    description: 'Interface to listen on. Use `0.0.0.0` to accept connections from other machines.',
  },
  PORT: { kind: 'integer', min: 0, max: 65_535, default: 8000, description: 'TCP port to listen on.' },
  WORKERS: {
    kind: 'integer',
    min: 1,
    max: 256,
    default: 1,
    description:
      'Server processes sharing the port (node:cluster), one per core at most; `tessera serve --workers N` overrides it. With more than one, set REDIS_URL so that rate limits and revocations are shared (docs/deployment.md).',
  },
  PUBLIC_URL: {
    kind: 'url',
    description:
      "The URL clients use to reach this server: the tokens' issuer, and, when HTTPS or not localhost, what makes the refresh cookie `Secure`. Required with NODE_ENV=production; elsewhere it defaults to `http://HOST:PORT` (instances sharing a database must then set it, or JWT_ISSUER, alike: docs/deployment.md).",
  },
  LOG_LEVEL: {
    kind: 'enum',
    choices: LOG_LEVELS,
    default: 'info',
    description: 'Tokens, passwords and cookies are never logged.',
  },
  METRICS_PORT: {
    kind: 'integer',
    min: 1,
    max: 65_535,
    description:
      'Unset: off. A port of its own on which GET /metrics serves Prometheus metrics, without a token (docs/operations.md, Metrics). With WORKERS above 1, the primary serves it for all the workers together.',
  },
  METRICS_HOST: {
    kind: 'string',
    default: '127.0.0.1',
    description:
      'The interface METRICS_PORT listens on: keep it private (the loopback, or an address only Prometheus reaches).',
  },
  METRICS_TOKEN: {
    kind: 'string',
    minBytes: 32,
    random: true,
    hint: 'generate one with `openssl rand -base64 32`',
    secret: true,
    description:
      'Unset: off. Serves GET /metrics on the API port too, to a Prometheus that sends it as a bearer token (`Authorization: Bearer …`); anything else is answered 401. One process only: not with WORKERS above 1 (use METRICS_PORT).',
  },
  DATABASE_URL: {
    kind: 'string',
    default: './data/tessera.db',
    secret: true,
    description:
      'An SQLite database file (created with its folder on first start), `:memory:`, or a PostgreSQL URL (`postgres://user:password@host:5432/db`; a schema other than `public` with `?options=-c%20search_path%3Dmyschema`). See docs/deployment.md.',
  },
  DATABASE_BUSY_TIMEOUT_MS: {
    kind: 'integer',
    min: 0,
    max: 600_000,
    default: 5000,
    description: 'How long SQLite waits for a lock held by another connection before failing.',
  },
  DATABASE_POOL_SIZE: {
    kind: 'integer',
    min: 1,
    max: 1000,
    default: 10,
    description: 'PostgreSQL: connections each process (each worker) keeps at most.',
  },
  DATABASE_CONNECT_TIMEOUT_MS: {
    kind: 'integer',
    min: 100,
    max: 600_000,
    default: 2000,
    description:
      'PostgreSQL: how long a request waits for a connection (a new one, or a free one from a busy pool) before it is answered 503 `database_unavailable`.',
  },
  DATABASE_STATEMENT_TIMEOUT_MS: {
    kind: 'integer',
    min: 100,
    max: 600_000,
    default: 5000,
    description:
      'PostgreSQL: longest a single query may run, enforced by the server and by the client (a dead network answers 503 instead of hanging).',
  },
  REDIS_URL: {
    kind: 'url',
    protocols: ['redis:', 'rediss:'],
    secret: true,
    description:
      'A Redis server (`redis://host:6379`, `rediss://` for TLS) shared by all instances: rate-limit counters, and revocations broadcast to every instance at once. Without it both live in each process. See docs/deployment.md.',
  },
  REDIS_KEY_PREFIX: {
    kind: 'string',
    default: 'tessera:',
    description:
      'Prefix of every Redis key and channel Tessera uses, so that several deployments can share one Redis.',
  },
  REDIS_COMMAND_TIMEOUT_MS: {
    kind: 'integer',
    min: 10,
    max: 60_000,
    default: 500,
    description:
      'How long a Redis command may take before it counts as failed (rate limits then count in the process). A server that stops answering altogether is disconnected after twice this, so that later commands fail at once.',
  },
  RATE_LIMIT_WINDOW_SECONDS: {
    kind: 'integer',
    min: 1,
    max: 86_400,
    default: 60,
    description: 'The window every rate limit below counts in. A limit of 0 turns that limit off.',
  },
  RATE_LIMIT_LOGIN_PER_IP: {
    ...RATE_LIMIT,
    default: 30,
    description: 'POST /auth/login requests per client address per window.',
  },
  RATE_LIMIT_LOGIN_PER_USERNAME: {
    ...RATE_LIMIT,
    default: 10,
    description:
      "Failed logins per username per window, from any address (a successful login is not counted, and does not clear the failures). Past it, even the right password waits: the price of stopping guessing is that someone can keep an account's logins waiting.",
  },
  RATE_LIMIT_REGISTER_PER_IP: {
    ...RATE_LIMIT,
    default: 10,
    description: 'POST /auth/register requests per client address per window.',
  },
  RATE_LIMIT_REGISTER_PER_USERNAME: {
    ...RATE_LIMIT,
    default: 5,
    description: 'POST /auth/register requests for one username per window, from any address.',
  },
  RATE_LIMIT_REFRESH_PER_IP: {
    ...RATE_LIMIT,
    default: 60,
    description: 'POST /auth/refresh requests per client address per window.',
  },
  RATE_LIMIT_REFRESH_PER_SESSION: {
    ...RATE_LIMIT,
    default: 20,
    description:
      'Refreshes of one session per window (a refresh request carries no username: its session stands for the account).',
  },
  RATE_LIMIT_PASSWORD_CHANGE_PER_USER: {
    ...RATE_LIMIT,
    default: 5,
    description:
      'POST /users/me/password, POST /auth/reauthenticate and DELETE /auth/mfa/totp requests (each checks the password) per signed-in user per window.',
  },
  RATE_LIMIT_PASSWORD_CHANGE_PER_IP: {
    ...RATE_LIMIT,
    default: 10,
    description:
      'POST /users/me/password, POST /auth/reauthenticate and DELETE /auth/mfa/totp requests per client address per window.',
  },
  RATE_LIMIT_PASSWORD_RESET_PER_IP: {
    ...RATE_LIMIT,
    default: 10,
    description:
      'POST /auth/password-reset (setting a password with a reset token) and POST /auth/password-reset/request requests per client address per window.',
  },
  RATE_LIMIT_PASSWORD_RESET_PER_USERNAME: {
    ...RATE_LIMIT,
    default: 3,
    description:
      'POST /auth/password-reset/request requests per username per window, whether or not the account exists.',
  },
  RATE_LIMIT_MFA_PER_IP: {
    ...RATE_LIMIT,
    default: 30,
    description: 'POST /auth/login/mfa (the second step of a login) requests per client address per window.',
  },
  RATE_LIMIT_MFA_PER_ACCOUNT: {
    ...RATE_LIMIT,
    default: 5,
    description:
      "Wrong second-factor codes (TOTP or recovery codes) per account per window, wherever one is checked (the login's second step, reauthentication, enrolment, removing the factor), counted per device as the slowdown counts: a device token's holder, the clients without one, and each session apart. Counted apart from passwords; each also counts in the slowdown (LOCKOUT_*). Past it, a login's second step without a device token is answered as a wrong code.",
  },
  JWT_ALGORITHM: {
    kind: 'enum',
    choices: JWT_ALGORITHMS,
    default: 'HS256',
    description:
      'Signing algorithm of access tokens. The HS algorithms sign with a shared secret; the others with a key pair whose public half is published at /.well-known/jwks.json.',
  },
  JWT_SECRET: {
    kind: 'string',
    minBytes: 32,
    random: true,
    hint: 'HS384 needs 48 bytes and HS512 64; generate one with `openssl rand -base64 48` (64 characters on one line)',
    secret: true,
    description:
      'HMAC signing secret for HS256/384/512, at least as long as the hash: 32 bytes for HS256, 48 for HS384, 64 for HS512 (RFC 7518, section 3.2); `openssl rand -base64 48` (64 characters on one line) suits all three. When no key is configured, outside production, a random key is generated on first start and kept in the database.',
  },
  JWT_SECRET_PREVIOUS: {
    kind: 'string',
    minBytes: 32,
    random: true,
    hint: 'HS384 needs 48 bytes and HS512 64, as for JWT_SECRET',
    secret: true,
    description:
      'A second HMAC secret that verifies access tokens and never signs one: the JWT_SECRET being rotated out (or, while instances are restarted one by one, the one about to be rotated in). Same rules as JWT_SECRET, from which it must differ; HS256/384/512 only. Remove it once ACCESS_TOKEN_TTL_SECONDS has passed since the switch (docs/operations.md, Rotating secrets).',
  },
  JWT_PRIVATE_KEY: {
    kind: 'string',
    secret: true,
    description:
      'A private key for EdDSA, ES256 or RS256, as PEM or JWK JSON. Imported into the database on first start (its kid is its RFC 7638 thumbprint); from then on it rotates like a generated key.',
  },
  JWT_PRIVATE_KEY_FILE: {
    kind: 'string',
    description: 'A file holding JWT_PRIVATE_KEY, for secrets mounted as files.',
  },
  KEY_ENCRYPTION_SECRET: {
    kind: 'string',
    minBytes: 32,
    random: true,
    hint: 'generate one with `openssl rand -base64 48`',
    secret: true,
    description:
      'When set, private signing keys and the server secret behind refresh tokens are stored in the database encrypted (JWE, A256GCM, key derived with HKDF); a server secret stored in the clear before is encrypted at start. Keep it: what is stored encrypted cannot be read without it.',
  },
  KEY_ENCRYPTION_SECRET_PREVIOUS: {
    kind: 'string',
    minBytes: 32,
    random: true,
    hint: 'the KEY_ENCRYPTION_SECRET being rotated out',
    secret: true,
    description:
      'A second secret that opens what is stored encrypted and never encrypts anything: the KEY_ENCRYPTION_SECRET being rotated out (or, while instances are restarted one by one, the one about to be rotated in). Needs KEY_ENCRYPTION_SECRET, from which it must differ. `npx tessera keys reseal` re-encrypts everything under KEY_ENCRYPTION_SECRET; then remove it (docs/operations.md, Rotating secrets).',
  },
  KEYS_RELOAD_INTERVAL_SECONDS: {
    kind: 'integer',
    min: 1,
    max: 86_400,
    default: 60,
    description:
      'How often a running server re-reads the signing keys, so that a rotation made elsewhere takes effect without a restart (an unknown kid also triggers a reload, at most every 5 s).',
  },
  JWT_ISSUER: {
    kind: 'url',
    description: 'The `iss` claim of issued tokens, checked on every token. Defaults to PUBLIC_URL.',
  },
  JWT_AUDIENCE: {
    kind: 'string',
    default: 'tessera',
    description: 'The `aud` claim of issued tokens, checked on every token.',
  },
  ACCESS_TOKEN_TTL_SECONDS: {
    kind: 'integer',
    min: 30,
    max: 86_400,
    default: 900,
    description: 'Lifetime of an access token (the `exp` claim minus `iat`).',
  },
  JWT_CLOCK_LEEWAY_SECONDS: {
    kind: 'integer',
    min: 0,
    max: 300,
    default: 30,
    description: 'Clock skew tolerated when checking `exp`, `nbf` and `iat`.',
  },
  JWT_MAX_TOKEN_BYTES: {
    kind: 'integer',
    min: 512,
    max: 65_536,
    default: 4096,
    description: 'Longer bearer tokens are refused before any parsing.',
  },
  AUTH_STATE_CACHE_TTL_MS: {
    kind: 'integer',
    min: 0,
    max: 60_000,
    default: 1000,
    description:
      'How long the revocation state behind an access token (session revoked, user disabled or deleted, password changed) may be served from memory. Changes made through this server take effect at once; changes made by another process within this bound.',
  },
  SESSION_ABSOLUTE_TTL_SECONDS: {
    kind: 'integer',
    min: 300,
    max: 31_536_000,
    default: 2_592_000,
    description: 'A session ends this long after login (30 days), however often it is refreshed.',
  },
  SESSION_IDLE_TTL_SECONDS: {
    kind: 'integer',
    min: 300,
    max: 31_536_000,
    default: 604_800,
    description: 'A session ends when it has not been refreshed for this long (7 days).',
  },
  REFRESH_REUSE_WINDOW_SECONDS: {
    kind: 'integer',
    min: 0,
    max: 60,
    default: 5,
    description:
      "For this long after a refresh token is spent, presenting it again returns the session's current tokens (concurrent tabs, retries) instead of revoking the session as reuse.",
  },
  SESSION_PURGE_INTERVAL_SECONDS: {
    kind: 'integer',
    min: 0,
    max: 604_800,
    default: 3600,
    description:
      'How often the server deletes expired and revoked sessions, and security events past EVENTS_RETENTION_DAYS (0: never; `tessera sessions purge` and `tessera events purge` do it on demand).',
  },
  PASSWORD_RESET_TTL_SECONDS: {
    kind: 'integer',
    min: 60,
    max: 86_400,
    default: 1800,
    description:
      'How long a password-reset token (and its link) stays valid. A newer token, a password change or its use ends it sooner.',
  },
  PASSWORD_RESET_PATH: {
    kind: 'string',
    format: URL_PATH,
    default: '/reset-password',
    description:
      "The path of the reset link, after PUBLIC_URL: the link is `PUBLIC_URL + PASSWORD_RESET_PATH + '#token=' + token`. The token is in the fragment, which browsers never send to a server or in a Referer.",
  },
  PASSWORD_RESET_WEBHOOK_URL: {
    kind: 'url',
    protocols: ['http:', 'https:'],
    secret: true,
    description:
      "Where self-service reset links are POSTed (`{username, userId, url, expires_in}`, signed like WEBHOOK_URL's deliveries) for the app to send by email, SMS or chat. Unset: POST /auth/password-reset/request is not served (404). Only its origin is ever logged.",
  },
  PASSWORD_RESET_WEBHOOK_SECRET: {
    kind: 'string',
    format: WEBHOOK_SECRETS,
    hint: WEBHOOK_SECRET_HINT,
    secret: true,
    description:
      'The signing secret of PASSWORD_RESET_WEBHOOK_URL, required with it, made and rotated like WEBHOOK_SECRET.',
  },
  LOCKOUT_FREE_FAILURES: {
    kind: 'integer',
    min: 1,
    max: 1000,
    default: 5,
    description:
      'Failed logins of an account (from clients without its device token) before each further one slows it down: the next login is refused, right password or not, for LOCKOUT_BASE_SECONDS, doubling with each failure up to LOCKOUT_MAX_SECONDS. A device token exempts its holder from the failures of others (README, Lockout).',
  },
  LOCKOUT_BASE_SECONDS: {
    kind: 'integer',
    min: 0,
    max: 86_400,
    default: 1,
    description: 'The first slowdown, after LOCKOUT_FREE_FAILURES failures (0: lockout off).',
  },
  LOCKOUT_MAX_SECONDS: {
    kind: 'integer',
    min: 1,
    max: 86_400,
    default: 900,
    description: 'The longest slowdown: never a permanent lock.',
  },
  LOCKOUT_RESET_HOURS: {
    kind: 'integer',
    min: 1,
    max: 8760,
    default: 24,
    description:
      "An account's failed logins are forgotten this many hours after the last one (a successful login forgets those of its own device at once).",
  },
  DEVICE_TOKEN_TTL_DAYS: {
    kind: 'integer',
    min: 1,
    max: 3650,
    default: 365,
    description:
      'How long the device token a successful login hands out exempts its holder from the slowdown that others cause (README, Lockout).',
  },
  PWNED_PASSWORDS_URL: {
    kind: 'url',
    protocols: ['http:', 'https:'],
    description:
      "Unset: off. The range endpoint of a Pwned Passwords service (`https://api.pwnedpasswords.com/range/`): passwords found in breaches are refused at register, change and reset. Only the first 5 hex characters of the password's SHA-1 are sent (k-anonymity), with padding.",
  },
  PWNED_PASSWORDS_TIMEOUT_MS: {
    kind: 'integer',
    min: 100,
    max: 10_000,
    default: 1500,
    description:
      'How long to wait for PWNED_PASSWORDS_URL; with no answer in time the check lets the password through and logs it (at most once a minute).',
  },
  EVENTS_RETENTION_DAYS: {
    kind: 'integer',
    min: 0,
    max: 36_500,
    default: 90,
    description:
      'Security events (README, Security events) are deleted this many days after they happened, with the periodic purge (SESSION_PURGE_INTERVAL_SECONDS) or by `tessera events purge` (0: kept for ever).',
  },
  DOCS_ENABLED: {
    kind: 'boolean',
    default: true,
    description:
      'Whether /docs serves the API reference (Swagger UI, rendered from the OpenAPI document, its assets served from the npm package). /openapi.json is served either way.',
  },
  ACCOUNT_PAGE_ENABLED: {
    kind: 'boolean',
    description:
      'Whether /account serves the account page (sign in, sessions, two-factor, password, activity), in cookie mode on this origin. Defaults to true, except with NODE_ENV=production.',
  },
  CORS_ORIGINS: {
    kind: 'string',
    default: ',',
    format: ORIGINS,
    description:
      'Origins whose scripts may call the API from a browser, with credentials (the cookie mode): comma-separated, each exact (`https://app.example.com`, `http://localhost:5173`). Others get no CORS headers. A lone `,` (the default) allows none: the simplest set-up serves the app and Tessera on one origin behind a reverse proxy (README, Browser apps).',
  },
  COOKIE_SAME_SITE: {
    kind: 'enum',
    choices: ['strict', 'lax', 'none'],
    default: 'strict',
    description:
      "The SameSite attribute of the refresh and device cookies. `strict` suits an app on Tessera's own site (the same registrable domain, `app.example.com` beside `auth.example.com`); `none` lets an app on another site use the cookie mode through CORS, and needs Secure cookies (https).",
  },
  COOKIE_SECURE: {
    kind: 'boolean',
    description:
      'Whether the refresh-token cookie is `Secure`. Defaults to true, except when PUBLIC_URL is plain-HTTP localhost, 127.0.0.1 or [::1].',
  },
  TRUST_PROXY: {
    kind: 'string',
    default: 'false',
    description:
      "Behind a reverse proxy, which X-Forwarded-For hops to believe, so that sessions record, and rate limits count, the client's address rather than the proxy's (without it, every client behind a load balancer shares one rate-limit count): the number of proxies (`1`), or their addresses or CIDRs (`10.0.0.0/8,127.0.0.1`). `true` believes every hop, which lets clients forge their address.",
  },
  ARGON2_MEMORY_KIB: {
    kind: 'integer',
    min: 19_456,
    max: 4_194_304,
    default: 19_456,
    description: 'argon2id memory cost in KiB (OWASP minimum: 19456).',
  },
  ARGON2_ITERATIONS: {
    kind: 'integer',
    min: 2,
    max: 100,
    default: 2,
    description: 'argon2id time cost (OWASP minimum with 19 MiB: 2).',
  },
  ARGON2_PARALLELISM: { kind: 'integer', min: 1, max: 16, default: 1, description: 'argon2id lanes.' },
  USERNAME_PATTERN: {
    kind: 'string',
    format: USERNAME_REGEXP,
    description:
      'Unset: 3 to USERNAME_MAX_LENGTH letters, digits, `.`, `_` or `-` of one script, starting with a letter or digit. Set: the regular expression a new username must match, whole (Tessera anchors it: `[^@\\s]+@[^@\\s]+` for email addresses), after Unicode NFKC normalization; registration, `tessera user create` and `tessera users import` apply it, login does not. Either way usernames are case-insensitive and may not mix scripts (`аdmin` with a Cyrillic `а`), and the OpenAPI document shows the pattern. Changing it leaves existing usernames as they are.',
  },
  USERNAME_MAX_LENGTH: {
    kind: 'integer',
    min: 3,
    max: 254,
    default: 32,
    description: 'The longest new username, in characters once normalized (254 fits any email address).',
  },
  RESERVED_USERNAMES: {
    kind: 'string',
    default:
      'admin,administrator,root,system,superuser,sysadmin,support,security,moderator,staff,official,tessera,postmaster,webmaster,hostmaster,abuse,noreply,anonymous',
    description:
      'Usernames that `POST /auth/register` refuses, comma-separated, compared by how they look (any case or width, look-alike letters of other scripts, separators and digits left out: `ɑdm_in1` is `admin`), so that nobody can pass for staff. `tessera user create` may still create them. A lone `,` reserves none.',
  },
  MFA_REQUIRED_ROLES: {
    kind: 'string',
    default: ',',
    description:
      "Roles that act only in sessions signed in with a second factor, comma-separated (`admin` is advised): a user holding one gets tokens without it until they enrol and sign in with a code, and the login's answer says `mfa_enrollment_required`. A lone `,` (the default) names none.",
  },
  TOTP_ISSUER: {
    kind: 'string',
    default: 'Tessera',
    description:
      'The name authenticator apps show beside the account name for a TOTP factor (the `issuer` of its `otpauth://` URI).',
  },
  WEBHOOK_URL: {
    kind: 'url',
    protocols: ['http:', 'https:'],
    secret: true,
    description:
      'Where security events are POSTed, signed per the Standard Webhooks specification, at least once, from a durable outbox (README, Webhooks). Unset: no webhooks. It may hold credentials: only its origin is ever logged.',
  },
  WEBHOOK_SECRET: {
    kind: 'string',
    format: WEBHOOK_SECRETS,
    hint: WEBHOOK_SECRET_HINT,
    secret: true,
    description:
      'The signing secret, required with WEBHOOK_URL (`echo whsec_$(openssl rand -base64 32)` makes one). Several sign each delivery with each: put the new one first to rotate without a gap.',
  },
  WEBHOOK_EVENTS: {
    kind: 'string',
    format: EVENT_FILTERS,
    default: '*',
    description:
      'The event types sent to WEBHOOK_URL: `*` for all, `user.*` for a family, `login.failed` for one.',
  },
  WEBHOOK_MAX_ATTEMPTS: {
    kind: 'integer',
    min: 1,
    max: 100,
    default: 30,
    description:
      'Attempts before a delivery is marked dead (with the default delays, 11 to 21 hours of retrying). `tessera webhooks retry` revives a dead one.',
  },
  WEBHOOK_RETRY_BASE_SECONDS: {
    kind: 'integer',
    min: 1,
    max: 3600,
    default: 10,
    description:
      'Delay before the second attempt; each further delay doubles, up to WEBHOOK_RETRY_MAX_SECONDS, and is drawn between half and all of that (jitter).',
  },
  WEBHOOK_RETRY_MAX_SECONDS: {
    kind: 'integer',
    min: 1,
    max: 86_400,
    default: 3600,
    description: 'The longest delay between two attempts of a delivery.',
  },
  WEBHOOK_TIMEOUT_MS: {
    kind: 'integer',
    min: 100,
    max: 60_000,
    default: 10_000,
    description:
      'How long the receiver has to answer an attempt (a 2xx status) before it counts as failed. Redirects are not followed.',
  },
  WEBHOOK_POLL_INTERVAL_MS: {
    kind: 'integer',
    min: 100,
    max: 600_000,
    default: 5000,
    description:
      'How often a server looks for deliveries it did not enqueue itself (enqueued by another instance, or revived by `tessera webhooks retry`); what it enqueues it sends at once, and its retries when they fall due.',
  },
  WEBHOOK_RETENTION_DAYS: {
    kind: 'integer',
    min: 0,
    max: 3650,
    default: 30,
    description:
      'Delivered and dead deliveries are deleted this many days after they were enqueued (0: kept for ever). Pending ones are never deleted.',
  },
} as const satisfies Readonly<Record<string, Setting>>

export type SettingName = keyof typeof SETTINGS
/** Each setting's value as loadConfig reads it: `SettingValues['PORT']` is a number. */
export type SettingValues = ValuesOf<typeof SETTINGS>
