// Issue 11: two instances over one PostgreSQL database, on different ports, with neither PUBLIC_URL nor
// JWT_ISSUER set: each issues tokens as its own address, so the other refuses them. Nothing can tell which
// URL clients use, so this stays allowed outside production, but each instance says so when it starts.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { call, signUp } from '../helpers/http-client.ts'
import { freePort } from '../helpers/outages.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import { createTestDatabase, TEST_POSTGRES_URL, type TestDatabase } from '../helpers/test-database.ts'

const WARNING = /Neither PUBLIC_URL nor JWT_ISSUER is set: tokens are issued by (http:\/\/127\.0\.0\.1:\d+)/

describe('issue 11: instances over one PostgreSQL with the default issuer', () => {
  let database: TestDatabase
  let a: ServerProcess
  let b: ServerProcess

  before(async () => {
    assert.ok(TEST_POSTGRES_URL, 'npm test runs this with PostgreSQL')
    database = await createTestDatabase()
    const env = { NODE_ENV: 'test', DATABASE_URL: database.url }
    // Ports of their own, as two instances have: the default issuer is http://HOST:PORT.
    const portA = await freePort()
    let portB = await freePort()
    while (portB === portA) portB = await freePort()
    ;[a, b] = await Promise.all([
      startServer({ env: { ...env, PORT: String(portA) } }),
      startServer({ env: { ...env, PORT: String(portB) } }),
    ])
  })

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await database?.drop()
  })

  it('each warns at start that its issuer is its own address, and a token from one is refused by the other', async () => {
    for (const server of [a, b]) {
      // Logged just after the start line, which is what the server's start waited for: it may still be on its way.
      for (let tries = 0; tries < 50 && !WARNING.test(server.output()); tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      const line = server
        .output()
        .split('\n')
        .find((text) => WARNING.test(text))
      assert.ok(line, `no warning in:\n${server.output()}`)
      assert.equal(JSON.parse(line).level, 40, 'a warning')
      assert.equal(WARNING.exec(line)?.[1], server.url, 'naming its own address')
    }
    const onB = await signUp(b.url)
    assert.equal((await call(b.url, 'GET', '/auth/me', { token: onB.access })).status, 200)
    assert.equal((await call(a.url, 'GET', '/auth/me', { token: onB.access })).status, 401)
  })
})
