// What Tessera does when what it depends on fails: PostgreSQL unreachable (refusing, or swallowing
// connections), Redis gone, and a SIGTERM with requests in flight. Real processes and real outages: a TCP
// proxy in front of PostgreSQL, and a Redis server of the test's own.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { withSearchPath } from '../../src/db/create-db.ts'
import { type Answer, call, signUp, TEST_PASSWORD } from '../helpers/http-client.ts'
import { type OwnRedis, ownRedis, startTcpProxy, type TcpProxy } from '../helpers/outages.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import { createTestDatabase, TEST_POSTGRES_URL, type TestDatabase } from '../helpers/test-database.ts'

async function timed(request: Promise<Answer>): Promise<Answer & { ms: number }> {
  const started = performance.now()
  const answer = await request
  return { ...answer, ms: performance.now() - started }
}

function assertUnavailable(answer: Answer & { ms: number }, code: string, withinMs: number) {
  assert.equal(answer.status, 503, JSON.stringify(answer.body))
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/)
  assert.equal(answer.body.code, code)
  assert.ok(!JSON.stringify(answer.body).includes('    at '), 'no stack trace')
  assert.ok(answer.ms < withinMs, `answered in ${answer.ms.toFixed(0)} ms, expected under ${withinMs} ms`)
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000, intervalMs = 100) {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`)
    await sleep(intervalMs)
  }
}

describe('PostgreSQL unreachable', () => {
  let database: TestDatabase
  let proxy: TcpProxy
  let server: ServerProcess

  before(async () => {
    assert.ok(TEST_POSTGRES_URL, 'npm test runs this with PostgreSQL')
    database = await createTestDatabase()
    const direct = new URL(database.url)
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port) })
    const viaProxy = new URL(database.url)
    viaProxy.port = String(proxy.port)
    server = await startServer({
      env: {
        NODE_ENV: 'test',
        DATABASE_URL: viaProxy.toString(),
        DATABASE_CONNECT_TIMEOUT_MS: '1000',
        DATABASE_STATEMENT_TIMEOUT_MS: '2000',
        // Every authenticated request reads the database, so that an outage shows on every one.
        AUTH_STATE_CACHE_TTL_MS: '0',
      },
    })
  })

  after(async () => {
    await server?.stop()
    await proxy?.close()
    await database?.drop()
  })

  it('answers 503 quickly while the database is down, stays up, and recovers by itself', async () => {
    const { username, access: token } = await signUp(server.url)
    assert.equal((await call(server.url, 'GET', '/ready')).status, 200)

    proxy.setMode('refuse')
    assertUnavailable(await timed(call(server.url, 'GET', '/ready')), 'not_ready', 2000)
    const me = await timed(call(server.url, 'GET', '/auth/me', { token }))
    assertUnavailable(me, 'database_unavailable', 2000)
    assert.equal(me.headers.get('retry-after'), '1')
    const login = await timed(
      call(server.url, 'POST', '/auth/login', { body: { username, password: TEST_PASSWORD } }),
    )
    assertUnavailable(login, 'database_unavailable', 2000)

    // A network that swallows packets: no answer ever comes; the connect timeout (1 s) ends the wait.
    proxy.setMode('blackhole')
    assertUnavailable(
      await timed(call(server.url, 'GET', '/auth/me', { token })),
      'database_unavailable',
      3000,
    )
    assertUnavailable(await timed(call(server.url, 'GET', '/ready')), 'not_ready', 3000)

    proxy.setMode('forward')
    await waitFor('ready again', async () => (await call(server.url, 'GET', '/ready')).status === 200)
    assert.equal((await call(server.url, 'GET', '/auth/me', { token })).status, 200)
    assert.equal(
      (await call(server.url, 'POST', '/auth/login', { body: { username, password: TEST_PASSWORD } })).status,
      200,
    )
    assert.equal(server.child.exitCode, null, 'the process stayed up throughout')
    assert.ok(!server.output().includes(token), 'tokens are never logged, even in error logs')
  })
})

describe('Redis unreachable', () => {
  let database: TestDatabase
  let redis: OwnRedis
  let a: ServerProcess
  let b: ServerProcess

  before(async () => {
    database = await createTestDatabase()
    redis = await ownRedis()
    await redis.start()
    const env = {
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      PUBLIC_URL: 'http://tessera.test',
      AUTH_STATE_CACHE_TTL_MS: '1000',
      RATE_LIMIT_LOGIN_PER_IP: '3',
      RATE_LIMIT_REGISTER_PER_IP: '100',
    }
    ;[a, b] = await Promise.all([startServer({ env }), startServer({ env })])
  })

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await redis?.kill()
    await database?.drop()
  })

  it('falls back: rate limits count per instance, revocations reach other instances within AUTH_STATE_CACHE_TTL_MS, and Redis is used again once back', async () => {
    // Signing up spends one of A's three logins in the shared (Redis) count.
    const { username, access: token } = await signUp(a.url)
    const login = (base: string) =>
      timed(call(base, 'POST', '/auth/login', { body: { username, password: TEST_PASSWORD } }))

    await redis.kill()

    // Rate limits fail open to counters in each process: answers come at once, and each instance still
    // enforces its limit on its own (three logins from this address, then 429).
    for (let i = 0; i < 3; i++) {
      const answer = await login(a.url)
      assert.equal(answer.status, 200, JSON.stringify(answer.body))
      assert.ok(answer.ms < 1000, `login took ${answer.ms.toFixed(0)} ms`)
    }
    const limited = await login(a.url)
    assert.equal(limited.status, 429)
    assert.equal((await login(b.url)).status, 200, "B's own count is separate while Redis is down")

    // Revocation is fail-closed: B learns of a logout on A from the database within the cache TTL (1 s).
    assert.equal((await call(b.url, 'GET', '/auth/me', { token })).status, 200, 'cached on B')
    assert.equal((await call(a.url, 'POST', '/auth/logout', { token })).status, 204)
    assert.equal((await call(a.url, 'GET', '/auth/me', { token })).status, 401, 'at once on A')
    await sleep(1100)
    assert.equal((await call(b.url, 'GET', '/auth/me', { token })).status, 401, 'on B within the TTL')
    assert.equal((await call(a.url, 'GET', '/ready')).status, 200, 'Redis is not needed to be ready')

    // Redis comes back (empty): the instances reconnect by themselves and count there again, so A's
    // exhausted in-process count no longer applies.
    await redis.start()
    await waitFor('logins counted in Redis again', async () => (await login(a.url)).status === 200)
    assert.equal(a.child.exitCode, null)
    assert.equal(b.child.exitCode, null)
  })
})

describe('SIGTERM', () => {
  it('finishes the requests in flight, closes the pools and exits 0, with one process or with workers', async () => {
    for (const serveArgs of [undefined, ['--workers', '2']]) {
      const database = await createTestDatabase()
      try {
        const server = await startServer({
          env: { NODE_ENV: 'test', DATABASE_URL: database.url },
          ...(serveArgs ? { serveArgs } : {}),
        })
        const { username } = await signUp(server.url)
        // A login takes a password hash (tens of ms): SIGTERM arrives once the server has received it.
        const received = () => server.output().split('"url":"/auth/login"').length - 1
        const before = received()
        const inFlight = call(server.url, 'POST', '/auth/login', {
          body: { username, password: TEST_PASSWORD },
        })
        await waitFor('the login to arrive', async () => received() > before, 5000, 1)
        const stopping = performance.now()
        const exitCode = server.stop()
        assert.equal((await inFlight).status, 200, `in-flight login with ${serveArgs ?? 'one process'}`)
        assert.equal(await exitCode, 0)
        const stoppedInMs = performance.now() - stopping
        assert.ok(stoppedInMs < 5000, `exited ${stoppedInMs.toFixed(0)} ms after SIGTERM`)
        await assert.rejects(fetch(`${server.url}/health`), 'no longer listening')
      } finally {
        await database.drop()
      }
    }
  })
})

describe('a schema that does not exist', () => {
  it('stops the start with one line that says so (exit 1)', async () => {
    assert.ok(TEST_POSTGRES_URL, 'npm test runs this with PostgreSQL')
    const url = withSearchPath(TEST_POSTGRES_URL, 'no_such_schema')
    await assert.rejects(
      startServer({ env: { NODE_ENV: 'test', DATABASE_URL: url } }),
      (error: Error) =>
        /exited with 1/.test(error.message) &&
        /does the schema named in its search_path exist/.test(error.message) &&
        !/\n\s+at /.test(error.message),
    )
  })
})

describe('a worker that dies', () => {
  it('is replaced by the primary, and the port keeps serving', async () => {
    const database = await createTestDatabase()
    const server = await startServer({
      env: { NODE_ENV: 'test', DATABASE_URL: database.url },
      serveArgs: ['--workers', '2'],
    })
    try {
      const listening = () =>
        [...server.output().matchAll(/"pid":(\d+)[^\n]*"msg":"Server listening at/g)].map((m) => Number(m[1]))
      await waitFor('both workers to listen', async () => listening().length === 2)
      const [victim] = listening()
      process.kill(victim as number, 'SIGKILL')
      await waitFor('a third worker to listen', async () => listening().length === 3)
      assert.match(server.output(), /worker died; starting another/)
      for (let i = 0; i < 4; i++) assert.equal((await call(server.url, 'GET', '/health')).status, 200)
      assert.equal(await server.stop(), 0)
    } finally {
      await server.stop()
      await database.drop()
    }
  })
  it('makes the primary give up with exit code 1 when workers keep dying right after they start', async () => {
    const database = await createTestDatabase()
    const server = await startServer({
      env: { NODE_ENV: 'test', DATABASE_URL: database.url },
      serveArgs: ['--workers', '2'],
    })
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve))
    try {
      const killed = new Set<number>()
      // Every worker is killed as soon as it listens: three early deaths in a row.
      while (server.child.exitCode === null && killed.size < 6) {
        for (const match of server.output().matchAll(/"pid":(\d+)[^\n]*"msg":"Server listening at/g)) {
          const pid = Number(match[1])
          if (killed.has(pid)) continue
          killed.add(pid)
          try {
            process.kill(pid, 'SIGKILL')
          } catch {}
        }
        await sleep(20)
      }
      assert.equal(await exited, 1)
      assert.match(server.output(), /workers keep dying at start; stopping/)
    } finally {
      await server.stop()
      await database.drop()
    }
  })
})
