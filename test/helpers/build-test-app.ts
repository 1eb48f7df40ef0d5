// Builds the production app (same buildApp, same createDeps) on an in-memory SQLite database, with a cheap
// password hasher so that tests run fast. Pass a fixed clock to control time instead of sleeping.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { buildApp } from '../../src/app.ts'
import { createPasswordHasher } from '../../src/auth/password-hasher.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDeps, type Deps, type DepsOverrides } from '../../src/deps.ts'

/** Far below production strength: for tests only, where the cost of the hash is not what is tested. */
export const TEST_ARGON2 = { memoryKib: 1024, iterations: 1, parallelism: 1 }

export const TEST_ENV = {
  NODE_ENV: 'test',
  DATABASE_URL: ':memory:',
  LOG_LEVEL: 'silent',
  PUBLIC_URL: 'http://tessera.test',
}

export type TestApp = Awaited<ReturnType<typeof buildTestApp>>

export async function buildTestApp(
  options: {
    env?: Record<string, string>
    overrides?: DepsOverrides
    modules?: FastifyPluginAsyncTypebox[]
  } = {},
) {
  const config = loadConfig({ ...TEST_ENV, ...options.env })
  const deps: Deps = await createDeps(config, {
    hasher: createPasswordHasher(TEST_ARGON2),
    ...options.overrides,
  })
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
    },
  }
}
