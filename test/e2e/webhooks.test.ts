// Issue 13, point 3: webhooks sent from a durable outbox, signed per Standard Webhooks, at least once, with
// retries that back off, dead deliveries that `tessera webhooks retry` revives, and an admin view. Messages
// are enqueued through the outbox as the event log does; time is a fixed clock the tests move.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { type Clock, createFixedClock, epochSeconds } from '../../src/lib/clock.ts'
import { newId } from '../../src/lib/ids.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { runTessera } from '../helpers/cli-process.ts'
import { bearer, createAdmin, registerUser } from '../helpers/fixtures.ts'
import { sharedTestDatabases } from '../helpers/test-database.ts'
import {
  assertSigned,
  type Receiver,
  startReceiver,
  TEST_WEBHOOK_SECRET,
} from '../helpers/webhook-receiver.ts'

/** A fixed clock on a whole second of real time: receivers check signatures' timestamps against theirs. */
const realTimeClock = () => createFixedClock(Math.floor(Date.now() / 1000) * 1000)

const webhookEnv = (receiver: Receiver, more: Record<string, string> = {}) => ({
  WEBHOOK_URL: receiver.url,
  WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
  // Only the messages these tests enqueue: the events of their own sign-ups are not counted.
  WEBHOOK_EVENTS: 'test.*',
  WEBHOOK_RETRY_BASE_SECONDS: '1',
  WEBHOOK_RETRY_MAX_SECONDS: '8',
  WEBHOOK_TIMEOUT_MS: '2000',
  ...more,
})

const message = (clock: Clock, n: number, type = 'test.ping') => ({
  id: newId(),
  type,
  timestamp: epochSeconds(clock),
  data: { n, note: 'ünïcode ✓' },
})

async function storedRow(t: TestApp, id: string) {
  return t.deps.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

describe('issue 13: webhooks from a durable outbox', () => {
  const receivers: Receiver[] = []
  const apps: TestApp[] = []
  const receiver = async (respond?: Parameters<typeof startReceiver>[0]) => {
    const started = await startReceiver(respond)
    receivers.push(started)
    return started
  }
  const app = async (options: Parameters<typeof buildTestApp>[0]) => {
    const built = await buildTestApp(options)
    apps.push(built)
    return built
  }
  after(async () => {
    await Promise.all(apps.map((t) => t.close()))
    await Promise.all(receivers.map((r) => r.close()))
  })

  it('delivers every message after a receiver that refuses for minutes, exactly once per webhook-id, signed', async () => {
    const clock = realTimeClock()
    // Down (500) for the first 3 minutes of the test's clock, then up: within the 5 minutes receivers allow a
    // signature's timestamp, so that the library verifies every attempt.
    const upAt = clock.now() + 180_000
    const hook = await receiver(() => (clock.now() < upAt ? 500 : 204))
    const t = await app({ env: webhookEnv(hook, { WEBHOOK_MAX_ATTEMPTS: '40' }), overrides: { clock } })
    const { outbox, dispatcher, deliveries } = t.deps.webhooks
    const ids: string[] = []
    for (let n = 0; n < 10; n++) ids.push(...(await outbox.enqueue(t.deps.db, message(clock, n))))
    // And as the event log does: in the transaction of the change.
    await t.deps.db.transaction().execute(async (trx) => {
      for (let n = 10; n < 20; n++) ids.push(...(await outbox.enqueue(trx, message(clock, n))))
    })
    assert.equal(new Set(ids).size, 20)

    for (let round = 0; round < 30 && new Set(hook.acceptedIds()).size < ids.length; round++) {
      await dispatcher.deliverDue()
      clock.advance(8000)
    }

    const accepted = hook.acceptedIds()
    assert.deepEqual(new Set(accepted), new Set(ids), 'every message arrives')
    assert.equal(
      accepted.length,
      ids.length,
      'each is accepted once: a receiver deduplicating by id sees each once',
    )
    const refused = hook.received.filter((entry) => entry.status === 500)
    assert.ok(
      refused.length >= ids.length * 10,
      `each was refused, and retried, ${refused.length} times in all`,
    )
    const bodies = new Map<string, string>()
    for (const entry of hook.received) {
      assertSigned(entry, TEST_WEBHOOK_SECRET)
      assert.equal(entry.contentType, 'application/json')
      // Every attempt of a message carries the same body and webhook-id.
      assert.equal(bodies.get(entry.id) ?? entry.body, entry.body)
      bodies.set(entry.id, entry.body)
    }
    const body = JSON.parse(bodies.get(ids[3] ?? '') ?? '{}')
    assert.deepEqual(Object.keys(body), ['type', 'timestamp', 'data'])
    assert.equal(body.type, 'test.ping')
    assert.equal(body.data.n, 3)
    assert.equal(body.data.note, 'ünïcode ✓')
    assert.ok(!Number.isNaN(Date.parse(body.timestamp)) && body.timestamp.endsWith('Z'), body.timestamp)
    const delivered = await deliveries.list({ status: 'delivered', limit: 100 })
    assert.equal(delivered.length, 20)
  })

  it('backs off exponentially with jitter, never early; marks dead after WEBHOOK_MAX_ATTEMPTS; webhooks retry revives it', async () => {
    const hook = await receiver(() => 500)
    const clock = realTimeClock()
    const dir = mkdtempSync(join(tmpdir(), 'tessera-webhooks-'))
    const databases = sharedTestDatabases()
    try {
      const databaseUrl = await databases.url(join(dir, 'tessera.db'))
      const env = webhookEnv(hook, {
        DATABASE_URL: databaseUrl,
        WEBHOOK_MAX_ATTEMPTS: '5',
        WEBHOOK_RETRY_BASE_SECONDS: '2',
        WEBHOOK_RETRY_MAX_SECONDS: '8',
      })
      const t = await buildTestApp({ env, overrides: { clock } })
      try {
        const { outbox, dispatcher, deliveries } = t.deps.webhooks
        const ids: string[] = []
        for (let n = 0; n < 20; n++) ids.push(...(await outbox.enqueue(t.deps.db, message(clock, n))))
        const [id] = ids as [string]

        for (let attempt = 1; attempt <= 5; attempt++) {
          assert.equal(await dispatcher.deliverDue(), 20, `attempt ${attempt} of each`)
          const now = epochSeconds(clock)
          const rows = await Promise.all(ids.map((each) => deliveries.findById(each)))
          const row = rows[0]
          assert.equal(row?.attempts, attempt)
          assert.equal(row?.lastError, 'HTTP 500')
          if (attempt === 5) break
          assert.equal(row?.status, 'pending')
          // The delay before attempt n + 1: 2 s doubling (2, 4, 8, 8), drawn between half of it and all of it.
          const ceiling = Math.min(8, 2 * 2 ** (attempt - 1))
          const waits = rows.map((r) => (r?.nextAttemptAt ?? 0) - now)
          for (const wait of waits) {
            assert.ok(
              wait >= ceiling / 2 && wait <= ceiling,
              `attempt ${attempt}: waits ${wait} s of ${ceiling}`,
            )
          }
          if (ceiling >= 4) assert.ok(new Set(waits).size > 1, `jitter spreads the retries: ${waits}`)
          // Nothing is attempted before it is due.
          const latest = Math.max(...waits)
          clock.advance((Math.min(...waits) - 1) * 1000)
          assert.equal(await dispatcher.deliverDue(), 0, 'not before its time')
          clock.advance((latest - Math.min(...waits) + 1) * 1000)
        }
        const dead = await deliveries.findById(id)
        assert.equal(dead?.status, 'dead')
        // Far past any retry delay (8 s at most), yet within the 5 minutes receivers allow timestamps.
        clock.advance(120_000)
        assert.equal(await dispatcher.deliverDue(), 0, 'a dead delivery is not attempted again')
        assert.equal(hook.received.filter((r) => r.id === id).length, 5)

        // The operator revives it with the CLI, in another process, once the receiver works again.
        hook.respond = () => 204
        const retried = await tessera(['webhooks', 'retry', id], databaseUrl)
        assert.equal(retried.code, 0, retried.stderr)
        assert.match(retried.stdout, /pending again, due now/)
        assert.equal(await dispatcher.deliverDue(), 1)
        const revived = await deliveries.findById(id)
        assert.equal(revived?.status, 'delivered')
        assert.equal(revived?.attempts, 1, 'a revived delivery starts a fresh round of attempts')
        assertSigned(hook.received.at(-1) ?? assert.fail(), TEST_WEBHOOK_SECRET)

        const again = await tessera(['webhooks', 'retry', id], databaseUrl)
        assert.equal(again.code, 1)
        assert.match(again.stderr, /already delivered/)
        const unknown = await tessera(['webhooks', 'retry', newId()], databaseUrl)
        assert.equal(unknown.code, 1)
        assert.match(unknown.stderr, /No webhook delivery/)
        const listed = await tessera(['webhooks', 'list', '--status', 'dead'], databaseUrl)
        assert.equal(listed.code, 0, listed.stderr)
        assert.equal(listed.stdout.trim().split('\n').length, 19)
        assert.match(listed.stdout, /last error: HTTP 500/)
        const all = await tessera(['webhooks', 'retry', '--all-dead'], databaseUrl)
        assert.equal(all.code, 0, all.stderr)
        assert.match(all.stdout, /Revived 19 dead deliveries/)
        assert.equal(await dispatcher.deliverDue(), 19)
        assert.equal(new Set(hook.acceptedIds()).size, 20)
      } finally {
        await t.close()
      }
    } finally {
      await databases.dropAll()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('records why an attempt failed: a status, a refused connection, no answer in time', async () => {
    const clock = realTimeClock()
    const closed = await receiver()
    await closed.close()
    const hanging = await receiver(() => 'hang')
    const failures: [Receiver, string][] = [
      [await receiver(() => 503), 'HTTP 503'],
      [await receiver(() => 302), 'HTTP 302'],
      [closed, 'connection failed (ECONNREFUSED)'],
      [hanging, 'no answer within 200 ms'],
    ]
    for (const [hook, expected] of failures) {
      const t = await app({ env: webhookEnv(hook, { WEBHOOK_TIMEOUT_MS: '200' }), overrides: { clock } })
      const [id] = (await t.deps.webhooks.outbox.enqueue(t.deps.db, message(clock, 1))) as [string]
      assert.equal(await t.deps.webhooks.dispatcher.deliverDue(), 1)
      const delivery = await t.deps.webhooks.deliveries.findById(id)
      assert.equal(delivery?.status, 'pending')
      assert.equal(delivery?.lastError, expected)
    }
  })

  it('keeps its connection to the receiver open, and sends again at once when the receiver closed it as it was reused', async () => {
    // The receiver answers the first request of each connection and drops the connection at the second, as a
    // server whose keep-alive timeout ends just as the next delivery comes does.
    const connections = new Set<unknown>()
    const requestsOn = new WeakMap<object, number>()
    const seen: string[] = []
    const server = createServer((request, response) => {
      connections.add(request.socket)
      const n = (requestsOn.get(request.socket) ?? 0) + 1
      requestsOn.set(request.socket, n)
      seen.push(String(request.headers['webhook-id']))
      request.resume().once('end', () => {
        if (n === 1) response.writeHead(204).end()
        else request.socket.destroy()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as AddressInfo
      const clock = realTimeClock()
      const t = await app({
        env: { ...webhookEnv({ url: `http://127.0.0.1:${port}/hooks` } as Receiver) },
        overrides: { clock },
      })
      const { outbox, dispatcher, deliveries } = t.deps.webhooks
      const ids: string[] = []
      for (const n of [1, 2]) {
        ids.push(...(await outbox.enqueue(t.deps.db, message(clock, n))))
        assert.equal(await dispatcher.deliverDue(), 1)
      }
      for (const id of ids) {
        const delivery = await deliveries.findById(id)
        assert.deepEqual([delivery?.status, delivery?.attempts], ['delivered', 1], `delivery ${id}`)
      }
      // The second delivery went on the first connection, was cut, and was sent again on a new one.
      assert.deepEqual(seen, [ids[0], ids[1], ids[1]])
      assert.equal(connections.size, 2)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('sends nothing of a transaction that rolls back, and only the types WEBHOOK_EVENTS takes', async () => {
    const hook = await receiver()
    const clock = realTimeClock()
    const t = await app({
      env: webhookEnv(hook, { WEBHOOK_EVENTS: 'user.*, login.failed' }),
      overrides: { clock },
    })
    const { outbox, dispatcher, deliveries } = t.deps.webhooks
    await assert.rejects(
      t.deps.db.transaction().execute(async (trx) => {
        assert.equal((await outbox.enqueue(trx, message(clock, 1, 'user.disabled'))).length, 1)
        throw new Error('the change failed')
      }),
      /the change failed/,
    )
    for (const type of ['login.succeeded', 'users.listed', 'login.failed.twice', 'test.ping']) {
      assert.deepEqual(await outbox.enqueue(t.deps.db, message(clock, 2, type)), [], type)
    }
    const taken = []
    for (const type of ['user.disabled', 'user.role.granted', 'login.failed']) {
      taken.push(...(await outbox.enqueue(t.deps.db, message(clock, 3, type))))
    }
    assert.equal(taken.length, 3)
    // The sign-up of createAdmin is an event too (user.registered), when the event log is wired.
    await dispatcher.deliverDue()
    const sent = hook.received.map((r) => JSON.parse(r.body).type)
    for (const type of ['user.disabled', 'user.role.granted', 'login.failed']) assert.ok(sent.includes(type))
    assert.ok(!sent.some((type) => ['login.succeeded', 'users.listed', 'test.ping'].includes(type)))
    assert.equal(hook.received.filter((r) => JSON.parse(r.body).type === 'user.disabled').length, 1)
    const listed = await deliveries.list({ limit: 100 })
    assert.ok(listed.every((d) => d.status === 'delivered'))
  })

  it('enqueues nothing without WEBHOOK_URL', async () => {
    const t = await app({})
    const clock = realTimeClock()
    assert.deepEqual(await t.deps.webhooks.outbox.enqueue(t.deps.db, message(clock, 1)), [])
    assert.equal(t.deps.webhooks.outbox.has('events'), false)
    assert.deepEqual(await t.deps.webhooks.deliveries.list({ limit: 10 }), [])
  })

  it('sends at once what this process enqueues, without waiting for the poll', async () => {
    const hook = await receiver()
    const t = await app({ env: webhookEnv(hook, { WEBHOOK_POLL_INTERVAL_MS: '600000' }) })
    const { outbox, dispatcher } = t.deps.webhooks
    dispatcher.start()
    await sleep(50) // the first pass, at start, finds nothing
    let committedAt = 0
    await t.deps.db.transaction().execute(async (trx) => {
      await outbox.enqueue(trx, message(t.deps.clock, 1))
      // The dispatcher hears of it before it commits.
      await sleep(100)
      committedAt = performance.now()
    })
    await hook.waitFor(() => hook.acceptedIds().length === 1, 2000, 'the delivery')
    const elapsed = performance.now() - committedAt
    assert.ok(elapsed < 1000, `sent ${elapsed.toFixed(0)} ms after its commit (the poll is 10 minutes)`)
    await dispatcher.stop()
  })

  it('on stop, gives back an attempt that is still waiting for its answer: pending, sent after', async () => {
    const hook = await receiver(() => 'hang')
    const t = await app({ env: webhookEnv(hook, { WEBHOOK_TIMEOUT_MS: '30000' }) })
    const { outbox, dispatcher } = t.deps.webhooks
    dispatcher.start()
    const [id] = (await outbox.enqueue(t.deps.db, message(t.deps.clock, 1))) as [string]
    await hook.waitFor(() => hook.received.length === 1, 2000, 'the attempt')
    const stoppedAt = performance.now()
    await dispatcher.stop(200)
    assert.ok(performance.now() - stoppedAt < 2000, 'stopping does not wait for the 30 s timeout')
    const row = await storedRow(t, id)
    assert.equal(row.status, 'pending')
    assert.equal(row.locked_until, null, 'given back: any instance may send it at once')
    assert.equal(Number(row.attempts), 0, 'an abandoned attempt does not count')

    hook.respond = () => 204
    dispatcher.start()
    await hook.waitFor(() => hook.acceptedIds().includes(id), 5000, 'the delivery after the restart')
    // The receiver has answered; the dispatcher marks the delivery a moment later.
    await dispatcher.stop()
    assert.equal((await storedRow(t, id)).status, 'delivered')
  })

  it('hands each due delivery to one of several senders claiming at once', async () => {
    const hook = await receiver()
    const clock = realTimeClock()
    const t = await app({ env: webhookEnv(hook), overrides: { clock } })
    const { outbox, deliveries } = t.deps.webhooks
    const ids: string[] = []
    for (let n = 0; n < 60; n++) ids.push(...(await outbox.enqueue(t.deps.db, message(clock, n))))
    const now = epochSeconds(clock)
    // On PostgreSQL each claim runs on a connection of its own, at the same time.
    const claims = await Promise.all(
      Array.from({ length: 8 }, () => deliveries.claimDue(['events'], now, now + 30, 10)),
    )
    const claimed = claims.flat().map((claim) => claim.delivery.id)
    assert.equal(claimed.length, 60)
    assert.equal(new Set(claimed).size, 60, 'no delivery is claimed twice')
    assert.deepEqual(await deliveries.claimDue(['events'], now, now + 30, 10), [], 'held under their leases')
    // A lease that ran out (its sender died) lets another sender take the delivery over; the first one's
    // late outcome then changes nothing.
    const [late] = claims[0] ?? []
    assert.ok(late)
    const retaken = await deliveries.claimDue(['events'], now + 31, now + 61, 100)
    assert.equal(retaken.length, 60)
    assert.equal(await deliveries.markDelivered(late, now + 32), false, 'the first lease is lost')
    const fresh = retaken.find((claim) => claim.delivery.id === late.delivery.id)
    assert.equal(fresh?.delivery.attempts, 2)
    assert.equal(await deliveries.markDelivered(fresh ?? assert.fail(), now + 32), true)
  })

  it('never sends an expiring message (a reset link) after it expires, and erases its payload once done', async () => {
    // Accepts the first message, refuses the second (they are sent together, in either order).
    const hook = await receiver((_n, request) => (JSON.parse(request.body).data.n === 1 ? 204 : 500))
    const clock = realTimeClock()
    const t = await app({ env: webhookEnv(hook, { WEBHOOK_EVENTS: 'none.*' }), overrides: { clock } })
    const { outbox, dispatcher, deliveries } = t.deps.webhooks
    assert.equal(outbox.has('events'), true)
    await assert.rejects(outbox.enqueueTo(t.deps.db, 'password_reset', message(clock, 0)), /not configured/)
    const expiresAt = epochSeconds(clock) + 60
    // Sent to the endpoint by name, whatever its WEBHOOK_EVENTS filter.
    const sent = await outbox.enqueueTo(t.deps.db, 'events', message(clock, 1, 'test.reset'), { expiresAt })
    const failing = await outbox.enqueueTo(t.deps.db, 'events', message(clock, 2, 'test.reset'), {
      expiresAt,
    })
    assert.equal(await dispatcher.deliverDue(), 2)
    assert.equal((await storedRow(t, sent)).status, 'delivered')
    assert.equal((await storedRow(t, sent)).payload, '', 'erased once delivered')
    assert.notEqual((await storedRow(t, failing)).payload, '', 'kept while it may still be sent')

    clock.advance(61_000)
    assert.equal(await dispatcher.deliverDue(), 0, 'not sent once expired')
    dispatcher.start()
    for (let i = 0; i < 100 && (await storedRow(t, failing)).status === 'pending'; i++) await sleep(10)
    await dispatcher.stop()
    const expired = await storedRow(t, failing)
    assert.equal(expired.status, 'dead')
    assert.equal(expired.payload, '')
    assert.equal(expired.last_error, 'expired before it could be delivered')
    assert.equal(await deliveries.retry(failing, epochSeconds(clock)), 'expired')
    assert.equal(hook.received.length, 2)
  })

  it('lists deliveries for admins, by status, a page at a time, without payloads', async () => {
    const hook = await receiver((n) => (n === 0 ? 204 : 503))
    const clock = realTimeClock()
    const t = await app({ env: webhookEnv(hook), overrides: { clock } })
    const admin = await createAdmin(t.app, t.deps)
    const user = await registerUser(t.app)
    const { outbox, dispatcher } = t.deps.webhooks
    const ids: string[] = []
    for (let n = 0; n < 3; n++) ids.push(...(await outbox.enqueue(t.deps.db, message(clock, n))))
    await dispatcher.deliverDue()

    const get = (query: string, token = admin.token) =>
      t.app.inject({ method: 'GET', url: `/admin/webhooks/deliveries${query}`, headers: bearer(token) })
    const pending = await get('?status=pending')
    assert.equal(pending.statusCode, 200, pending.body)
    const page = pending.json()
    assert.equal(page.deliveries.length, 2)
    assert.equal(page.nextCursor, null)
    for (const d of page.deliveries) {
      assert.equal(d.status, 'pending')
      assert.equal(d.endpoint, 'events')
      assert.equal(d.type, 'test.ping')
      assert.equal(d.attempts, 1)
      assert.equal(d.lastError, 'HTTP 503')
      assert.ok(Date.parse(d.nextAttemptAt) > Date.parse(d.createdAt))
      assert.equal(d.deliveredAt, null)
    }
    assert.ok(!pending.body.includes('payload') && !pending.body.includes('"data"'), 'no payload')
    const delivered = (await get('?status=delivered')).json()
    assert.equal(delivered.deliveries.length, 1)
    assert.equal(delivered.deliveries[0].nextAttemptAt, null)
    assert.ok(delivered.deliveries[0].deliveredAt)

    // Newest first, a page at a time.
    const first = (await get('?limit=2')).json()
    assert.deepEqual(
      first.deliveries.map((d: { id: string }) => d.id),
      [ids[2], ids[1]],
    )
    const second = (await get(`?limit=2&cursor=${first.nextCursor}`)).json()
    assert.deepEqual(
      second.deliveries.map((d: { id: string }) => d.id),
      [ids[0]],
    )
    assert.equal(second.nextCursor, null)

    assert.equal((await get('?status=lost')).statusCode, 400)
    assert.equal((await get('', user.token)).statusCode, 403)
    assert.equal((await t.app.inject({ method: 'GET', url: '/admin/webhooks/deliveries' })).statusCode, 401)
  })

  it('sends user.registered when someone registers through HTTP, its data the event as GET /admin/events shows it', async () => {
    const hook = await receiver()
    const t = await app({ env: webhookEnv(hook, { WEBHOOK_EVENTS: 'user.registered' }) })
    const admin = await createAdmin(t.app, t.deps)
    const user = await registerUser(t.app)
    const taken = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: user.username, password: 'another good password', firstName: 'A', lastName: 'B' },
    })
    assert.equal(taken.statusCode, 409, 'a failed registration records nothing, and sends nothing')
    await t.deps.webhooks.dispatcher.deliverDue()

    const registered = hook.received
      .map((entry) => ({ entry, body: JSON.parse(entry.body) }))
      .filter(({ body }) => body.data.userId === user.id)
    assert.equal(registered.length, 1)
    const [{ entry, body }] = registered as [(typeof registered)[number]]
    assertSigned(entry, TEST_WEBHOOK_SECRET)
    assert.equal(body.type, 'user.registered')
    assert.equal(body.data.type, 'user.registered')
    assert.equal(body.data.detail.username, user.username)
    assert.equal(Date.parse(body.timestamp), Date.parse(body.data.at))
    const events = await t.app.inject({
      method: 'GET',
      url: `/admin/events?type=user.registered&user=${user.id}`,
      headers: bearer(admin.token),
    })
    assert.equal(events.statusCode, 200, events.body)
    assert.deepEqual(events.json().events, [body.data])
    assert.ok(
      hook.received.every((r) => JSON.parse(r.body).type === 'user.registered'),
      'only what WEBHOOK_EVENTS takes (no login.succeeded)',
    )
  })

  it('logs only the origin of WEBHOOK_URL, never its credentials, the secret or a signature; sends credentials as Basic auth', async () => {
    const hook = await receiver((n) => (n === 0 ? 500 : 204))
    const lines: string[] = []
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) })
    const clock = realTimeClock()
    const { port } = new URL(hook.url)
    const url = `http://hook-user:s3cr3t%40pass@127.0.0.1:${port}/hooks/tessera?token=query-token-123`
    const t = await app({ env: webhookEnv(hook, { WEBHOOK_URL: url }), overrides: { clock, log } })
    const { outbox, dispatcher, deliveries } = t.deps.webhooks
    const [id] = (await outbox.enqueue(t.deps.db, message(clock, 1))) as [string]
    dispatcher.start()
    await hook.waitFor(() => hook.received.length === 1, 2000, 'the first attempt')
    await hook.waitFor(() => lines.some((line) => line.includes('will be retried')), 2000, 'the log line')
    clock.advance(60_000)
    await hook.waitFor(() => hook.acceptedIds().includes(id), 2000, 'the second attempt')
    await dispatcher.stop()
    assert.equal((await deliveries.findById(id))?.status, 'delivered')

    assert.equal(
      hook.received[0]?.authorization,
      `Basic ${Buffer.from('hook-user:s3cr3t@pass').toString('base64')}`,
    )
    const output = lines.join('')
    assert.match(output, new RegExp(`"origin":"http://127\\.0\\.0\\.1:${port}"`), 'the origin is logged')
    assert.match(output, /webhook delivery failed; it will be retried/)
    const signatures = hook.received.map((r) => r.signature.split(',')[1] ?? assert.fail('no signature'))
    for (const secret of [
      'hook-user',
      's3cr3t',
      'query-token-123',
      '/hooks/tessera',
      TEST_WEBHOOK_SECRET.slice('whsec_'.length),
      ...signatures,
    ]) {
      assert.ok(!output.includes(secret), `the log holds ${secret}`)
    }
  })
})

/** `tessera ...args` as a real process on the test's database. */
const tessera = (args: string[], databaseUrl: string) =>
  runTessera(args, { env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: databaseUrl } })
