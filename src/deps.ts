// The composition root: builds every service once, from config, as plain objects. Tests pass overrides
// (a fixed clock, a cheaper hasher) and get the same wiring as production.

import { availableParallelism } from 'node:os'
import { type AuthService, createAuthService } from './auth/auth.service.ts'
import { type AuthStateCache, createAuthStateCache } from './auth/auth-state.ts'
import { createPasswordHasher, type PasswordHasher } from './auth/password-hasher.ts'
import { broadcastRevocations } from './auth/revocation-broadcast.ts'
import { createTokenService, type TokenService } from './auth/token.service.ts'
import type { Config } from './config/load-config.ts'
import { createDb } from './db/create-db.ts'
import type { Db } from './db/database.ts'
import { migrateDatabase } from './db/migrator.ts'
import { createKeyStore, type KeyStore, provisionSigningKey } from './keys/key-store.ts'
import { getOrCreateServerSecret } from './keys/server-secret.ts'
import { type Clock, systemClock } from './lib/clock.ts'
import { createLogger, type Logger } from './lib/logger.ts'
import { createRateLimiters, type RateLimiters } from './rate-limits/rate-limiter.ts'
import { createRedis, type RedisConnections } from './redis/create-redis.ts'
import { createSessionRepository, type SessionRepository } from './sessions/session.repository.ts'
import { createSessionService, type SessionService } from './sessions/session.service.ts'
import { createUserRepository, type UserRepository } from './users/user.repository.ts'
import { createUsersService, type UsersService } from './users/users.service.ts'

export type Deps = {
  config: Config
  clock: Clock
  /** For what happens outside a request (a lost connection, a failed timer); requests log through Fastify. */
  log: Logger
  db: Db
  rateLimits: RateLimiters
  users: UserRepository
  sessionRepository: SessionRepository
  hasher: PasswordHasher
  keyStore: KeyStore
  tokens: TokenService
  authStates: AuthStateCache
  auth: AuthService
  sessions: SessionService
  usersService: UsersService
  close(): Promise<void>
}

export type DepsOverrides = Partial<Pick<Deps, 'clock' | 'hasher' | 'db' | 'log'>>

/**
 * `provisionKeys`: make sure the configured signing key is in place (generate, import, retire). The server
 * does; CLI commands other than `serve` and `keys` only read keys, so that they never change them.
 */
export async function createDeps(
  config: Config,
  overrides: DepsOverrides = {},
  { provisionKeys = true }: { provisionKeys?: boolean } = {},
): Promise<Deps> {
  const clock = overrides.clock ?? systemClock
  const log = overrides.log ?? createLogger(config.logLevel)
  const db =
    overrides.db ??
    createDb(config.database, (error) => log.warn({ err: error }, 'a pooled database connection failed'))
  const redis =
    config.redis && createRedis(config.redis, (error) => log.warn({ err: error }, 'Redis is not reachable'))
  try {
    return await assemble(config, { clock, log, db, redis, hasher: overrides.hasher }, provisionKeys)
  } catch (error) {
    // A failed start (a migration, a key that cannot be read) must not leave connections holding it open.
    await Promise.all([db.destroy(), redis?.close()])
    throw error
  }
}

async function assemble(
  config: Config,
  opened: Pick<Deps, 'clock' | 'log' | 'db'> & {
    redis: RedisConnections | undefined
    hasher: PasswordHasher | undefined
  },
  provisionKeys: boolean,
): Promise<Deps> {
  const { clock, log, db, redis } = opened
  await migrateDatabase(config.database, db)
  // Counting starts in Redis, not in the fallback, when Redis is up; when it is down, serve anyway.
  if (redis && !(await redis.waitUntilReady())) {
    log.warn('Redis is not reachable yet: rate limits count per process until it is')
  }
  const users = createUserRepository(db)
  const sessionRepository = createSessionRepository(db)
  // One hash per core on the machine, shared by the workers on it: each gets its part.
  const hasher =
    opened.hasher ??
    createPasswordHasher(config.argon2, Math.max(1, Math.floor(availableParallelism() / config.workers)))
  if (provisionKeys) await provisionSigningKey(db, clock, config)
  const keyStore = await createKeyStore(db, clock, config)
  const tokens = createTokenService(keyStore, clock, config.jwt)
  const localAuthStates = createAuthStateCache(
    sessionRepository.findAccessState,
    clock,
    config.authStateCacheTtlMs,
  )
  const authStates = redis
    ? broadcastRevocations(localAuthStates, redis, (error) =>
        log.warn({ err: error }, 'a revocation could not be broadcast through Redis'),
      )
    : localAuthStates
  const rateLimits = createRateLimiters(config.rateLimits, redis, (error) =>
    log.warn({ err: error }, 'Redis cannot count rate limits; counting in this process until it can'),
  )
  const sessions = createSessionService({
    sessions: sessionRepository,
    users,
    tokens,
    authStates,
    clock,
    rotationSecret: await getOrCreateServerSecret(db, clock, 'refresh-token-rotation'),
    limitRefresh: (sessionId) => rateLimits.refreshPerSession.consume(sessionId),
    config: config.sessions,
  })
  return {
    config,
    clock,
    log,
    db,
    rateLimits,
    users,
    sessionRepository,
    hasher,
    keyStore,
    tokens,
    authStates,
    sessions,
    auth: createAuthService({ users, hasher, sessions, authStates, clock }),
    usersService: createUsersService({ users, sessions, authStates, clock }),
    async close() {
      await Promise.all([db.destroy(), redis?.close()])
    },
  }
}
