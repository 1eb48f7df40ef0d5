// Two Tessera processes on different ports over one PostgreSQL database and one Redis, as behind a load
// balancer: whatever one instance does, the other honours.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { call, signUp, TEST_PASSWORD } from '../helpers/http-client.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import {
  createTestDatabase,
  TEST_POSTGRES_URL,
  TEST_REDIS_URL,
  type TestDatabase,
} from '../helpers/test-database.ts'

const BIN = resolve(import.meta.dirname, '../../bin/tessera.js')

const kidOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).kid as string

describe('two instances over one PostgreSQL and one Redis', () => {
  let database: TestDatabase
  let env: Record<string, string>
  let a: ServerProcess
  let b: ServerProcess

  before(async () => {
    assert.ok(TEST_POSTGRES_URL && TEST_REDIS_URL, 'npm test runs this with PostgreSQL and Redis')
    database = await createTestDatabase()
    env = {
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `test:${randomUUID()}:`,
      // One public URL for both, as behind a load balancer: it is the tokens' issuer.
      PUBLIC_URL: 'http://tessera.test',
      // Long enough that only the Redis broadcast can explain a revocation seen at once elsewhere.
      AUTH_STATE_CACHE_TTL_MS: '30000',
      REFRESH_REUSE_WINDOW_SECONDS: '0',
      RATE_LIMIT_LOGIN_PER_USERNAME: '4',
      RATE_LIMIT_LOGIN_PER_IP: '1000',
      RATE_LIMIT_REGISTER_PER_IP: '1000',
    }
    // Started together, as a deployment does: both migrate the empty schema and agree on one signing key.
    ;[a, b] = await Promise.all([
      startServer({ env: { ...env, KEYS_RELOAD_INTERVAL_SECONDS: '1' } }),
      startServer({ env }),
    ])
  })

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await database?.drop()
  })

  const signUpOnA = () => signUp(a.url)

  it('accepts on B a token issued by A; both sign with the one key they agreed on at start', async () => {
    const { access, username } = await signUpOnA()
    const me = await call(b.url, 'GET', '/auth/me', { token: access })
    assert.equal(me.status, 200)
    assert.equal(me.body.username, username)
    const onB = await call(b.url, 'POST', '/auth/login', { body: { username, password: TEST_PASSWORD } })
    assert.equal(kidOf(onB.body.access_token), kidOf(access))
  })

  it('detects on B the reuse of a refresh token already spent on A, and revokes the session everywhere', async () => {
    const { refresh } = await signUpOnA()
    const rotated = await call(a.url, 'POST', '/auth/refresh', { body: { refresh_token: refresh } })
    assert.equal(rotated.status, 200)
    // B has the new access token's session state in its cache before the reuse.
    assert.equal((await call(b.url, 'GET', '/auth/me', { token: rotated.body.access_token })).status, 200)

    const reused = await call(b.url, 'POST', '/auth/refresh', { body: { refresh_token: refresh } })
    assert.equal(reused.status, 401)
    assert.equal(reused.body.code, 'refresh_token_reused')
    for (const base of [a.url, b.url]) {
      assert.equal((await call(base, 'GET', '/auth/me', { token: rotated.body.access_token })).status, 401)
    }
    const successor = await call(a.url, 'POST', '/auth/refresh', {
      body: { refresh_token: rotated.body.refresh_token },
    })
    assert.equal(successor.status, 401, 'the thief and the victim both lose the session')
  })

  it('honours on B a logout made on A within the broadcast, far inside AUTH_STATE_CACHE_TTL_MS', async () => {
    const { access } = await signUpOnA()
    assert.equal((await call(b.url, 'GET', '/auth/me', { token: access })).status, 200, 'cached on B')
    assert.equal((await call(a.url, 'POST', '/auth/logout', { token: access })).status, 204)
    const loggedOutAt = performance.now()
    let status = 200
    while (status === 200 && performance.now() - loggedOutAt < 5000) {
      status = (await call(b.url, 'GET', '/auth/me', { token: access })).status
      if (status === 200) await sleep(20)
    }
    const elapsed = performance.now() - loggedOutAt
    assert.equal(status, 401)
    assert.ok(elapsed < 1000, `refused on B after ${elapsed.toFixed(0)} ms (the cache TTL is 30 s)`)
  })

  it('honours on B a key rotated on A', async () => {
    const { username, access: before } = await signUpOnA()
    const rotate = spawn(process.execPath, [BIN, 'keys', 'rotate'], {
      env: { PATH: process.env.PATH ?? '', ...env, LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    })
    assert.equal(await new Promise((r) => rotate.once('exit', r)), 0)

    // A reloads its keys every second; then it signs with the new key.
    let after = before
    for (let i = 0; i < 50 && kidOf(after) === kidOf(before); i++) {
      await sleep(100)
      const login = await call(a.url, 'POST', '/auth/login', { body: { username, password: TEST_PASSWORD } })
      after = login.body.access_token
    }
    assert.notEqual(kidOf(after), kidOf(before), 'A signs with the rotated key')
    // B has not reloaded on its own schedule (60 s): the unknown kid makes it look.
    const onB = await call(b.url, 'GET', '/auth/me', { token: after })
    assert.equal(onB.status, 200, JSON.stringify(onB.body))
    assert.equal(
      (await call(b.url, 'GET', '/auth/me', { token: before })).status,
      200,
      'the old key still verifies',
    )
  })

  it('counts rate limits across both instances', async () => {
    const { username } = await signUpOnA()
    const attempt = (base: string) =>
      call(base, 'POST', '/auth/login', { body: { username, password: 'not the password' } })
    // RATE_LIMIT_LOGIN_PER_USERNAME is 4: two failures on each instance use it up.
    for (const base of [a.url, b.url, a.url, b.url]) assert.equal((await attempt(base)).status, 401)
    for (const base of [a.url, b.url]) {
      const limited = await attempt(base)
      assert.equal(limited.status, 429)
      assert.equal(limited.body.code, 'rate_limited')
    }
  })
})
