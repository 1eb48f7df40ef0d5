// The composition root: builds every service once, from config, as plain objects. Tests pass overrides
// (a fixed clock, a cheaper hasher) and get the same wiring as production.

import { type AuthService, createAuthService } from './auth/auth.service.ts'
import { type AuthStateCache, createAuthStateCache } from './auth/auth-state.ts'
import { createPasswordHasher, type PasswordHasher } from './auth/password-hasher.ts'
import { createTokenService, type TokenService } from './auth/token.service.ts'
import type { Config } from './config/load-config.ts'
import { createDb } from './db/create-db.ts'
import type { Db } from './db/database.ts'
import { migrateToLatest } from './db/migrator.ts'
import { createKeyStore, type KeyStore, provisionSigningKey } from './keys/key-store.ts'
import { getOrCreateServerSecret } from './keys/server-secret.ts'
import { type Clock, systemClock } from './lib/clock.ts'
import { createSessionRepository, type SessionRepository } from './sessions/session.repository.ts'
import { createSessionService, type SessionService } from './sessions/session.service.ts'
import { createUserRepository, type UserRepository } from './users/user.repository.ts'
import { createUsersService, type UsersService } from './users/users.service.ts'

export type Deps = {
  config: Config
  clock: Clock
  db: Db
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

export type DepsOverrides = Partial<Pick<Deps, 'clock' | 'hasher' | 'db'>>

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
  const db = overrides.db ?? createDb(config.database)
  await migrateToLatest(db)
  const users = createUserRepository(db)
  const sessionRepository = createSessionRepository(db)
  const hasher = overrides.hasher ?? createPasswordHasher(config.argon2)
  if (provisionKeys) await provisionSigningKey(db, clock, config)
  const keyStore = await createKeyStore(db, clock, config)
  const tokens = createTokenService(keyStore, clock, config.jwt)
  const authStates = createAuthStateCache(
    sessionRepository.findAccessState,
    clock,
    config.authStateCacheTtlMs,
  )
  const sessions = createSessionService({
    sessions: sessionRepository,
    users,
    tokens,
    authStates,
    clock,
    rotationSecret: await getOrCreateServerSecret(db, clock, 'refresh-token-rotation'),
    config: config.sessions,
  })
  return {
    config,
    clock,
    db,
    users,
    sessionRepository,
    hasher,
    keyStore,
    tokens,
    authStates,
    sessions,
    auth: createAuthService({ users, hasher, sessions, authStates, clock }),
    usersService: createUsersService({ users, sessions, authStates, clock }),
    close: () => db.destroy(),
  }
}
