// Issue 13: two Tessera instances over one PostgreSQL database share one webhook outbox. Both send (each
// claims batches under a lease, over rows locked with SKIP LOCKED), and each delivery is sent by one of them,
// once.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDb } from '../../src/db/create-db.ts'
import { epochSeconds, systemClock } from '../../src/lib/clock.ts'
import { newId } from '../../src/lib/ids.ts'
import { createWebhookOutbox } from '../../src/webhooks/webhook-outbox.ts'
import { signUp } from '../helpers/http-client.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import { createTestDatabase, TEST_POSTGRES_URL, type TestDatabase } from '../helpers/test-database.ts'
import {
  assertSigned,
  type Receiver,
  startReceiver,
  TEST_WEBHOOK_SECRET,
} from '../helpers/webhook-receiver.ts'

const MESSAGES = 200

describe('issue 13: two instances over one PostgreSQL deliver each webhook once', () => {
  let database: TestDatabase
  let hook: Receiver
  let env: Record<string, string>
  let a: ServerProcess
  let b: ServerProcess

  before(async () => {
    assert.ok(TEST_POSTGRES_URL, 'npm test runs this with PostgreSQL')
    database = await createTestDatabase()
    // A slow receiver keeps each batch under way long enough for the other instance's poll to come.
    hook = await startReceiver(() => 204, { delayMs: 20 })
    env = {
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      PUBLIC_URL: 'http://tessera.test',
      WEBHOOK_URL: hook.url,
      WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
      WEBHOOK_EVENTS: 'test.*,user.registered',
      WEBHOOK_POLL_INTERVAL_MS: '100',
      // Each delivery's log line says which instance sent it.
      LOG_LEVEL: 'debug',
    }
    ;[a, b] = await Promise.all([startServer({ env }), startServer({ env })])
  })

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await hook?.close()
    await database?.drop()
  })

  it('sends each delivery exactly once, the two instances sharing the work', async () => {
    const config = loadConfig(env)
    const db = createDb(config.database)
    const ids: string[] = []
    try {
      const outbox = createWebhookOutbox(config.webhooks.endpoints, systemClock)
      await db.transaction().execute(async (trx) => {
        for (let n = 0; n < MESSAGES; n++) {
          const message = {
            id: newId(),
            type: 'test.shared',
            timestamp: epochSeconds(systemClock),
            data: { n },
          }
          ids.push(...(await outbox.enqueue(trx, message)))
        }
      })
      await hook.waitFor(() => hook.received.length >= MESSAGES, 30_000, 'every delivery')
      // Time for a duplicate to show up, if there were one.
      await sleep(500)
      const pending = await db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('status', '!=', 'delivered')
        .execute()
      assert.deepEqual(pending, [], 'every delivery is recorded as delivered')
    } finally {
      await db.destroy()
    }

    const received = hook.received.map((r) => r.id)
    assert.equal(received.length, MESSAGES, 'no delivery was sent twice')
    assert.deepEqual(new Set(received), new Set(ids))
    for (const entry of hook.received) assertSigned(entry, TEST_WEBHOOK_SECRET)

    const sentBy = (server: ServerProcess) =>
      new Set(ids.filter((id) => server.output().includes(`"delivery":"${id}"`)))
    const [byA, byB] = [sentBy(a), sentBy(b)]
    assert.equal(byA.size + byB.size, MESSAGES, 'each was sent by exactly one instance')
    assert.ok(byA.size > 0 && byB.size > 0, `both instances sent some: ${byA.size} and ${byB.size}`)
  })

  it('sends once each event recorded through HTTP on either instance (user.registered)', async () => {
    const before = hook.received.length
    const usernames = new Set<string>()
    for (let i = 0; i < 20; i++) usernames.add((await signUp(i % 2 === 0 ? a.url : b.url)).username)
    const registered = () =>
      hook.received
        .slice(before)
        .map((entry) => JSON.parse(entry.body))
        .filter((body) => body.type === 'user.registered')
    await hook.waitFor(() => registered().length >= 20, 10_000, 'the 20 user.registered events')
    await sleep(500)
    const bodies = registered()
    assert.equal(bodies.length, 20, 'each event is sent once')
    assert.deepEqual(new Set(bodies.map((body) => body.data.detail.username)), usernames)
    assert.equal(new Set(bodies.map((body) => body.data.id)).size, 20)
    for (const entry of hook.received.slice(before)) assertSigned(entry, TEST_WEBHOOK_SECRET)
  })
})
