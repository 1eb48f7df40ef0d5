// The composition root: builds every part once, from config, as plain objects, grouped by role: the data
// access (repositories), the access layer (keys, tokens, revocation states, rate limits) and the feature
// services. Tests replace any part (a fixed clock, a cheaper hasher, a repository) and get the same wiring.

import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { createAccessStateLoader } from './access/access-state.repository.ts'
import { type AuthStateCache, createAuthStateCache } from './access/auth-state.ts'
import { broadcastRevocations } from './access/revocation-broadcast.ts'
import { createTokenService, type TokenService } from './access/token.service.ts'
import { createUsernamePolicy, type UsernamePolicy } from './access/username.ts'
import { type AuthService, createAuthService } from './auth/auth.service.ts'
import { createBreachedPasswordCheck } from './auth/breached-passwords.ts'
import { createDeviceTokens } from './auth/device-tokens.ts'
import { createLockout, type Lockout } from './auth/lockout.ts'
import { createLoginThrottleRepository } from './auth/login-throttle.repository.ts'
import { createMfaRepository, type MfaRepository } from './auth/mfa.repository.ts'
import { createMfaService, type MfaService } from './auth/mfa.service.ts'
import { createNewPasswordCheck } from './auth/new-password.ts'
import { createPasswordHasher, type PasswordHasher } from './auth/password-hasher.ts'
import {
  createPasswordResetRepository,
  type PasswordResetRepository,
} from './auth/password-reset.repository.ts'
import {
  createPasswordResetService,
  type PasswordResetService,
  type SendResetLink,
} from './auth/password-reset.service.ts'
import { createUserImporter, type UserImporter } from './auth/user-import.service.ts'
import { type Config, PASSWORD_RESET_ENDPOINT } from './config/load-config.ts'
import { createDb, poolUsage } from './db/create-db.ts'
import type { Db } from './db/database.ts'
import { migrateDatabase } from './db/migrator.ts'
import { createTransact } from './db/transact.ts'
import { createEventRepository, type EventRepository } from './events/event.repository.ts'
import { SYSTEM_CONTEXT } from './events/event.ts'
import {
  bindRecorder,
  createEventRecorder,
  createNameHasher,
  type EventRecorder,
  type EventWriter,
} from './events/event-recorder.ts'
import { EVENT_TYPES } from './events/event-types.ts'
import { createEventsService, type EventsService } from './events/events.service.ts'
import { keyEncryptionFor } from './keys/key-encryption.ts'
import {
  createKeyStore,
  type KeyActivated,
  type KeyProvision,
  type KeyStore,
  provisionSigningKey,
} from './keys/key-store.ts'
import { getOrCreateServerSecret } from './keys/server-secret.ts'
import { type Clock, systemClock } from './lib/clock.ts'
import { createLogger, type Logger } from './lib/logger.ts'
import type { Metrics } from './metrics/metrics.ts'
import { createMetrics } from './metrics/prometheus.ts'
import { createRateLimiters, type RateLimiters } from './rate-limits/rate-limiter.ts'
import { createRedis } from './redis/create-redis.ts'
import { createSessionRepository, type SessionRepository } from './sessions/session.repository.ts'
import { createSessionService, type SessionService } from './sessions/session.service.ts'
import { createUserRepository, type UserRepository } from './users/user.repository.ts'
import { createUsersService, type UsersService } from './users/users.service.ts'
import type { WebhookMessage } from './webhooks/webhook-signature.ts'
import { createWebhooks, type Webhooks } from './webhooks/webhooks.ts'

export type Repositories = { users: UserRepository; sessions: SessionRepository; events: EventRepository }

/**
 * The repositories of a unit of work, bound to its transaction: a change and the security events recording it
 * are written through one store, and commit or roll back together (decision 0012).
 */
export type Store = {
  users: UserRepository
  sessions: SessionRepository
  events: EventWriter
  passwordResets: PasswordResetRepository
  mfa: MfaRepository
  /** Enqueues a reset link for PASSWORD_RESET_WEBHOOK_URL in the store's transaction (the outbox). */
  sendResetLink: SendResetLink
}

/** The lower layer every route relies on: what checks a request before any feature sees it. */
export type Access = {
  keyStore: KeyStore
  tokens: TokenService
  /** The revocation state behind access tokens, remembered briefly (and broadcast through Redis). */
  authStates: AuthStateCache
  rateLimits: RateLimiters
  /** USERNAME_PATTERN and USERNAME_MAX_LENGTH: what a new username must be (register, CLI, import). */
  usernames: UsernamePolicy
}

export type Services = {
  auth: AuthService
  passwordResets: PasswordResetService
  lockout: Lockout
  mfa: MfaService
  sessions: SessionService
  users: UsersService
  events: EventsService
  /** `tessera user import`: users and their hashes from another system (issue 18). */
  userImport: UserImporter
}

export type Deps = {
  config: Config
  clock: Clock
  db: Db
  repositories: Repositories
  access: Access
  services: Services
  /** The webhook outbox (features enqueue in their transactions), its deliveries, and its dispatcher. */
  webhooks: Webhooks
  /** What GET /metrics serves; with metrics off, reports that count nothing. */
  metrics: Metrics
  /** Where this start's signing key came from (undefined when keys were not provisioned): the start line says. */
  signingKeyProvision: KeyProvision | undefined
  close(): Promise<void>
}

/** Any part replaced; what is not replaced is built as in production, from the parts that are. */
export type DepsOverrides = {
  clock?: Clock
  db?: Db
  /** The log of what happens outside a request (a lost connection); requests log through Fastify. */
  log?: Logger
  hasher?: PasswordHasher
  repositories?: Partial<Repositories>
  access?: Partial<Access>
  services?: Partial<Services>
  webhooks?: Partial<Webhooks>
  metrics?: Metrics
  /** Wraps the store of every unit of work (a test making one write fail inside its transaction, say). */
  store?: (store: Store) => Store
}

/**
 * `provisionKeys`: make sure the configured signing key is in place (generate, import, retire). The server
 * does; CLI commands other than `serve` and `keys` only read keys, so that they never change them.
 */
export async function createDeps(
  config: Config,
  overrides: DepsOverrides = {},
  { provisionKeys = true }: { provisionKeys?: boolean } = {},
): Promise<Deps> {
  const log = overrides.log ?? createLogger(config.logLevel)
  const db =
    overrides.db ??
    createDb(config.database, (error) => log.warn({ err: error }, 'a pooled database connection failed'))
  const redis =
    config.redis && createRedis(config.redis, (error) => log.warn({ err: error }, 'Redis is not reachable'))
  let webhooks: Webhooks | undefined
  const close = async () => {
    // Attempts under way finish, or are given back pending, while the pool they record with is still open.
    await webhooks?.dispatcher.stop()
    await Promise.all([db.destroy(), redis?.close()])
  }
  try {
    await migrateDatabase(config.database, db, log)
    // Counting starts in Redis, not in the fallback, when Redis is up; when it is down, serve anyway.
    if (redis && !(await redis.waitUntilReady())) {
      log.warn('Redis is not reachable yet: rate limits count per process until it is')
    }
    const clock = overrides.clock ?? systemClock
    // Loaded only when served (METRICS_PORT or METRICS_TOKEN); a cluster's worker reports to its primary.
    const metrics =
      overrides.metrics ??
      (await createMetrics({
        enabled: config.metrics.port !== undefined || config.metrics.token !== undefined,
        clusterWorker: cluster.isWorker,
      }))
    webhooks = createWebhooks(
      {
        db,
        config: config.webhooks,
        clock,
        log,
        eventTypes: Object.keys(EVENT_TYPES),
        onAttempt: metrics.webhookAttempted,
      },
      overrides.webhooks,
    )
    const recorder: EventRecorder = createEventRecorder({
      outbox: webhooks.outbox,
      clock,
      onRecorded: metrics.eventRecorded,
    })
    const keyMadeAtStart: KeyActivated = (trx, key) =>
      recorder.record(trx, { type: 'key.rotated', context: SYSTEM_CONTEXT, detail: key })
    const signingKeyProvision = provisionKeys
      ? await provisionSigningKey(db, clock, config, keyMadeAtStart)
      : undefined
    const repositories: Repositories = {
      users: overrides.repositories?.users ?? createUserRepository(db),
      sessions: overrides.repositories?.sessions ?? createSessionRepository(db),
      events: overrides.repositories?.events ?? createEventRepository(db),
    }
    const outbox = webhooks.outbox
    const bindStore = (executor: Db): Store => {
      const store = {
        users: createUserRepository(executor),
        sessions: createSessionRepository(executor),
        events: bindRecorder(recorder, executor),
        passwordResets: createPasswordResetRepository(executor),
        mfa: createMfaRepository(executor),
        sendResetLink: (message: WebhookMessage, expiresAt: number) =>
          outbox.enqueueTo(executor, PASSWORD_RESET_ENDPOINT, message, { expiresAt }),
      }
      return overrides.store ? overrides.store(store) : store
    }
    const transact = createTransact(db, bindStore)

    const loadAccessState = createAccessStateLoader(db)
    const keyStore = overrides.access?.keyStore ?? (await createKeyStore(db, clock, config))
    const localAuthStates = createAuthStateCache(loadAccessState, clock, config.authStateCacheTtlMs)
    const access: Access = {
      keyStore,
      tokens:
        overrides.access?.tokens ?? createTokenService(keyStore, clock, config.jwt, config.mfa.requiredRoles),
      authStates:
        overrides.access?.authStates ??
        (redis
          ? broadcastRevocations(localAuthStates, redis, (error) =>
              log.warn({ err: error }, 'a revocation could not be broadcast through Redis'),
            )
          : localAuthStates),
      rateLimits:
        overrides.access?.rateLimits ??
        createRateLimiters(
          config.rateLimits,
          redis,
          (error) =>
            log.warn({ err: error }, 'Redis cannot count rate limits; counting in this process until it can'),
          metrics.rateLimitRefused,
        ),
      usernames: createUsernamePolicy(config.usernames),
    }

    const { tokens, authStates } = access
    const sessions =
      overrides.services?.sessions ??
      createSessionService({
        sessions: repositories.sessions,
        transact,
        loadAccessState,
        tokens,
        authStates,
        clock,
        rotationSecret: await getOrCreateServerSecret(db, clock, config, 'refresh-token-rotation'),
        config: config.sessions,
      })
    // One hash per core on the machine, shared by the workers on it: each gets its part.
    const hasher =
      overrides.hasher ??
      createPasswordHasher(
        config.argon2,
        Math.max(1, Math.floor(availableParallelism() / config.workers)),
        metrics.hashQueue,
      )
    const users = repositories.users
    const newPasswords = createNewPasswordCheck(
      createBreachedPasswordCheck(config.breachedPasswords, log, clock),
    )
    const lockout =
      overrides.services?.lockout ??
      createLockout(createLoginThrottleRepository(db), bindRecorder(recorder, db), clock, config.lockout)
    const mfa =
      overrides.services?.mfa ??
      createMfaService({
        mfa: createMfaRepository(db),
        transact,
        keyEncryption: keyEncryptionFor(config),
        // Recovery codes are kept as HMACs under this key: a copy of the table alone finds none.
        recoveryCodeKey: await getOrCreateServerSecret(db, clock, config, 'recovery-code-key'),
        clock,
        issuer: config.mfa.totpIssuer,
        authStates,
      })
    const services: Services = {
      sessions,
      lockout,
      mfa,
      passwordResets:
        overrides.services?.passwordResets ??
        createPasswordResetService({
          users,
          passwordResets: createPasswordResetRepository(db),
          transact,
          hasher,
          newPasswords,
          authStates,
          lockout,
          forgetLoginLimit: (account) => access.rateLimits.loginPerUsername.forget(account),
          clock,
          config: config.recovery,
        }),
      auth:
        overrides.services?.auth ??
        createAuthService({
          users,
          transact,
          events: bindRecorder(recorder, db),
          hasher,
          newPasswords,
          lockout,
          mfa,
          mfaRequiredRoles: config.mfa.requiredRoles,
          // Device tokens are bound to the account by an HMAC under this key (README, Lockout).
          deviceTokens: createDeviceTokens(
            await getOrCreateServerSecret(db, clock, config, 'device-token-key'),
            clock,
            config.lockout.deviceTokenTtlSeconds,
          ),
          sessions,
          authStates,
          clock,
          reservedUsernames: config.reservedUsernames,
          usernames: access.usernames,
          // Login names that no account has are recorded as an HMAC under this key, never as typed.
          hashAttemptedName: createNameHasher(
            await getOrCreateServerSecret(db, clock, config, 'event-name-key'),
          ),
          throttleWindowSeconds: config.rateLimits.windowSeconds,
        }),
      users: overrides.services?.users ?? createUsersService({ users, transact, authStates, clock }),
      userImport:
        overrides.services?.userImport ??
        createUserImporter({ users, transact, usernames: access.usernames, clock }),
      events:
        overrides.services?.events ??
        createEventsService({
          events: repositories.events,
          clock,
          retentionDays: config.events.retentionDays,
        }),
    }
    const { deliveries } = webhooks
    metrics.watch({
      databasePool: () => poolUsage(db),
      keysLoadedAt: () => keyStore.loadedAt(),
      webhookBacklog: () => deliveries.countBacklog(),
      now: () => clock.now(),
    })
    return {
      config,
      clock,
      db,
      repositories,
      access,
      services,
      webhooks,
      metrics,
      signingKeyProvision,
      close,
    }
  } catch (error) {
    // A failed start (a migration, a key that cannot be read) must not leave connections holding it open.
    await close()
    throw error
  }
}
