// Builds the production app (same buildApp, same createDeps) on a fresh database of the run's backend
// (in-memory SQLite, or a schema of its own in PostgreSQL; see test-database.ts), with a cheap password
// hasher so that tests run fast. Pass a fixed clock to control time instead of sleeping.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { buildApp } from '../../src/app.ts'
import { createPasswordHasher } from '../../src/auth/password-hasher.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDeps, type Deps, type DepsOverrides } from '../../src/deps.ts'
import { createTestDatabase, testRedisEnv } from './test-database.ts'

/** Far below production strength: for tests only, where the cost of the hash is not what is tested. */
export const TEST_ARGON2 = { memoryKib: 1024, iterations: 1, parallelism: 1 }

export const TEST_ENV = {
  NODE_ENV: 'test',
  DATABASE_URL: ':memory:',
  LOG_LEVEL: 'silent',
  PUBLIC_URL: 'http://tessera.test',
  // Every test signs in from the same address; the rate-limit tests set their own, low limits.
  RATE_LIMIT_LOGIN_PER_IP: '100000',
  RATE_LIMIT_LOGIN_PER_USERNAME: '100000',
  RATE_LIMIT_REGISTER_PER_IP: '100000',
  RATE_LIMIT_REGISTER_PER_USERNAME: '100000',
  RATE_LIMIT_REFRESH_PER_IP: '100000',
  RATE_LIMIT_REFRESH_PER_SESSION: '100000',
  RATE_LIMIT_PASSWORD_CHANGE_PER_USER: '100000',
  RATE_LIMIT_PASSWORD_CHANGE_PER_IP: '100000',
  RATE_LIMIT_PASSWORD_RESET_PER_IP: '100000',
  RATE_LIMIT_PASSWORD_RESET_PER_USERNAME: '100000',
  RATE_LIMIT_MFA_PER_IP: '100000',
  RATE_LIMIT_MFA_PER_ACCOUNT: '100000',
}

export type TestApp = Awaited<ReturnType<typeof buildTestApp>>

export async function buildTestApp(
  options: {
    env?: Record<string, string>
    overrides?: DepsOverrides
    modules?: FastifyPluginAsyncTypebox[]
  } = {},
) {
  // A database the test brings (shared with other apps or processes) is the test's to drop.
  const database = options.env?.DATABASE_URL ? undefined : await createTestDatabase()
  const config = loadConfig({
    ...TEST_ENV,
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...testRedisEnv(),
    ...options.env,
  })
  let deps: Deps
  try {
    deps = await createDeps(config, { hasher: createPasswordHasher(TEST_ARGON2), ...options.overrides })
  } catch (error) {
    await database?.drop()
    throw error
  }
  const app = await buildApp({
    deps,
    logger: false,
    ...(options.modules ? { modules: options.modules } : {}),
  })
  return {
    app,
    deps,
    async close() {
      await app.close()
      await deps.close()
      await database?.drop()
    },
  }
}
