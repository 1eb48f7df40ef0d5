// Every environment variable Tessera reads, with its default and meaning. The README's configuration table
// is generated from this list (`npm run docs:config`), so the two cannot drift.

export type EnvVar = {
  name: string
  description: string
  /** The default as the user would write it; undefined when the variable is optional with no default. */
  default?: string
}

export const ENV_VARS = [
  {
    name: 'NODE_ENV',
    default: 'development',
    description:
      '`development`, `test` or `production`. Production never generates or replaces a signing key: it refuses to start without one configured or stored.',
  },
  {
    name: 'HOST',
    default: '127.0.0.1',
    description: 'Interface to listen on. Use `0.0.0.0` to accept connections from other machines.',
  },
  { name: 'PORT', default: '8000', description: 'TCP port to listen on.' },
  {
    name: 'WORKERS',
    default: '1',
    description:
      'Server processes sharing the port (node:cluster), one per core at most; `tessera serve --workers N` overrides it. With more than one, set REDIS_URL so that rate limits and revocations are shared (docs/deployment.md).',
  },
  {
    name: 'PUBLIC_URL',
    description: 'The URL clients use to reach this server. Defaults to `http://HOST:PORT`.',
  },
  {
    name: 'LOG_LEVEL',
    default: 'info',
    description:
      '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. Tokens, passwords and cookies are never logged.',
  },
  {
    name: 'DATABASE_URL',
    default: './data/tessera.db',
    description:
      'An SQLite database file (created with its folder on first start), `:memory:`, or a PostgreSQL URL (`postgres://user:password@host:5432/db`; a schema other than `public` with `?options=-c%20search_path%3Dmyschema`). See docs/deployment.md.',
  },
  {
    name: 'DATABASE_BUSY_TIMEOUT_MS',
    default: '5000',
    description: 'How long SQLite waits for a lock held by another connection before failing.',
  },
  {
    name: 'DATABASE_POOL_SIZE',
    default: '10',
    description: 'PostgreSQL: connections each process (each worker) keeps at most.',
  },
  {
    name: 'DATABASE_CONNECT_TIMEOUT_MS',
    default: '2000',
    description:
      'PostgreSQL: how long a request waits for a connection (a new one, or a free one from a busy pool) before it is answered 503 `database_unavailable`.',
  },
  {
    name: 'DATABASE_STATEMENT_TIMEOUT_MS',
    default: '5000',
    description:
      'PostgreSQL: longest a single query may run, enforced by the server and by the client (a dead network answers 503 instead of hanging).',
  },
  {
    name: 'REDIS_URL',
    description:
      'A Redis server (`redis://host:6379`, `rediss://` for TLS) shared by all instances: rate-limit counters, and revocations broadcast to every instance at once. Without it both live in each process. See docs/deployment.md.',
  },
  {
    name: 'REDIS_KEY_PREFIX',
    default: 'tessera:',
    description:
      'Prefix of every Redis key and channel Tessera uses, so that several deployments can share one Redis.',
  },
  {
    name: 'REDIS_COMMAND_TIMEOUT_MS',
    default: '500',
    description:
      'How long a Redis command may take before it counts as failed (rate limits then count in the process). A server that stops answering altogether is disconnected after twice this, so that later commands fail at once.',
  },
  {
    name: 'RATE_LIMIT_WINDOW_SECONDS',
    default: '60',
    description: 'The window every rate limit below counts in. A limit of 0 turns that limit off.',
  },
  {
    name: 'RATE_LIMIT_LOGIN_PER_IP',
    default: '30',
    description: 'POST /auth/login requests per client address per window.',
  },
  {
    name: 'RATE_LIMIT_LOGIN_PER_USERNAME',
    default: '10',
    description:
      "Failed logins per username per window, from any address (a successful login is not counted, and does not clear the failures). Past it, even the right password waits: the price of stopping guessing is that someone can keep an account's logins waiting.",
  },
  {
    name: 'RATE_LIMIT_REGISTER_PER_IP',
    default: '10',
    description: 'POST /auth/register requests per client address per window.',
  },
  {
    name: 'RATE_LIMIT_REGISTER_PER_USERNAME',
    default: '5',
    description: 'POST /auth/register requests for one username per window, from any address.',
  },
  {
    name: 'RATE_LIMIT_REFRESH_PER_IP',
    default: '60',
    description: 'POST /auth/refresh requests per client address per window.',
  },
  {
    name: 'RATE_LIMIT_REFRESH_PER_SESSION',
    default: '20',
    description:
      'Refreshes of one session per window (a refresh request carries no username: its session stands for the account).',
  },
  {
    name: 'JWT_ALGORITHM',
    default: 'HS256',
    description:
      'Signing algorithm of access tokens: `HS256`, `HS384`, `HS512` (a shared secret), or `EdDSA`, `ES256`, `RS256` (a key pair whose public half is published at /.well-known/jwks.json).',
  },
  {
    name: 'JWT_SECRET',
    description:
      'HMAC signing secret for HS256/384/512, at least 32 characters (`openssl rand -base64 48`). When no key is configured, outside production, a random key is generated on first start and kept in the database.',
  },
  {
    name: 'JWT_PRIVATE_KEY',
    description:
      'A private key for EdDSA, ES256 or RS256, as PEM or JWK JSON. Imported into the database on first start (its kid is its RFC 7638 thumbprint); from then on it rotates like a generated key.',
  },
  {
    name: 'JWT_PRIVATE_KEY_FILE',
    description: 'A file holding JWT_PRIVATE_KEY, for secrets mounted as files.',
  },
  {
    name: 'KEY_ENCRYPTION_SECRET',
    description:
      'When set, private signing keys are stored in the database encrypted (JWE, A256GCM, key derived with HKDF). At least 32 characters. Keep it: keys stored encrypted cannot be read without it.',
  },
  {
    name: 'KEYS_RELOAD_INTERVAL_SECONDS',
    default: '60',
    description:
      'How often a running server re-reads the signing keys, so that a rotation made elsewhere takes effect without a restart (an unknown kid also triggers a reload, at most every 5 s).',
  },
  {
    name: 'JWT_ISSUER',
    description: 'The `iss` claim of issued tokens, checked on every token. Defaults to PUBLIC_URL.',
  },
  {
    name: 'JWT_AUDIENCE',
    default: 'tessera',
    description: 'The `aud` claim of issued tokens, checked on every token.',
  },
  {
    name: 'ACCESS_TOKEN_TTL_SECONDS',
    default: '900',
    description: 'Lifetime of an access token (the `exp` claim minus `iat`).',
  },
  {
    name: 'JWT_CLOCK_LEEWAY_SECONDS',
    default: '30',
    description: 'Clock skew tolerated when checking `exp`, `nbf` and `iat`.',
  },
  {
    name: 'JWT_MAX_TOKEN_BYTES',
    default: '4096',
    description: 'Longer bearer tokens are refused before any parsing.',
  },
  {
    name: 'AUTH_STATE_CACHE_TTL_MS',
    default: '1000',
    description:
      'How long the revocation state behind an access token (session revoked, user disabled or deleted, password changed) may be served from memory. Changes made through this server take effect at once; changes made by another process within this bound.',
  },
  {
    name: 'SESSION_ABSOLUTE_TTL_SECONDS',
    default: '2592000',
    description: 'A session ends this long after login (30 days), however often it is refreshed.',
  },
  {
    name: 'SESSION_IDLE_TTL_SECONDS',
    default: '604800',
    description: 'A session ends when it has not been refreshed for this long (7 days).',
  },
  {
    name: 'REFRESH_REUSE_WINDOW_SECONDS',
    default: '5',
    description:
      "For this long after a refresh token is spent, presenting it again returns the session's current tokens (concurrent tabs, retries) instead of revoking the session as reuse.",
  },
  {
    name: 'SESSION_PURGE_INTERVAL_SECONDS',
    default: '3600',
    description:
      'How often the server deletes expired and revoked sessions (0: never; `tessera sessions purge` does it on demand).',
  },
  {
    name: 'COOKIE_SECURE',
    description:
      'Whether the refresh-token cookie is `Secure`. Defaults to true, except when PUBLIC_URL is plain-HTTP localhost, 127.0.0.1 or [::1].',
  },
  {
    name: 'TRUST_PROXY',
    default: 'false',
    description:
      "Behind a reverse proxy, which X-Forwarded-For hops to believe, so that sessions record, and rate limits count, the client's address rather than the proxy's (without it, every client behind a load balancer shares one rate-limit count): the number of proxies (`1`), or their addresses or CIDRs (`10.0.0.0/8,127.0.0.1`). `true` believes every hop, which lets clients forge their address.",
  },
  {
    name: 'ARGON2_MEMORY_KIB',
    default: '19456',
    description: 'argon2id memory cost in KiB (OWASP minimum: 19456).',
  },
  {
    name: 'ARGON2_ITERATIONS',
    default: '2',
    description: 'argon2id time cost (OWASP minimum with 19 MiB: 2).',
  },
  { name: 'ARGON2_PARALLELISM', default: '1', description: 'argon2id lanes.' },
] as const satisfies readonly EnvVar[]

export type EnvVarName = (typeof ENV_VARS)[number]['name']
