// Issue 13: the outbox is durable. A Tessera process killed with SIGKILL while deliveries are pending, some of
// them under way to a receiver that has not answered yet, loses none: the next process sends them all.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDb } from '../../src/db/create-db.ts'
import { epochSeconds, systemClock } from '../../src/lib/clock.ts'
import { newId } from '../../src/lib/ids.ts'
import { createWebhookOutbox } from '../../src/webhooks/webhook-outbox.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import { sharedTestDatabases } from '../helpers/test-database.ts'
import { assertSigned, startReceiver, TEST_WEBHOOK_SECRET } from '../helpers/webhook-receiver.ts'

describe('issue 13: webhook deliveries survive a crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-webhooks-restart-'))
  const databases = sharedTestDatabases()
  const servers: ServerProcess[] = []
  after(async () => {
    for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL')
    await databases.dropAll()
    rmSync(dir, { recursive: true, force: true })
  })

  it('sends after a restart every delivery pending when the process was killed with SIGKILL', async () => {
    const hook = await startReceiver(() => 'hang')
    try {
      const env = {
        NODE_ENV: 'test',
        DATABASE_URL: await databases.url(join(dir, 'tessera.db')),
        PUBLIC_URL: 'http://tessera.test',
        WEBHOOK_URL: hook.url,
        WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
        WEBHOOK_EVENTS: 'test.*',
        // A claim's lease is this plus 5 s: what the restarted process waits for those under way at the kill.
        WEBHOOK_TIMEOUT_MS: '2000',
        WEBHOOK_POLL_INTERVAL_MS: '100',
      }
      const first = await startServer({ env })
      servers.push(first)

      // Enqueued by another process (as another instance would), which the server finds by polling.
      const config = loadConfig(env)
      const db = createDb(config.database)
      const ids: string[] = []
      try {
        const outbox = createWebhookOutbox(config.webhooks.endpoints, systemClock)
        // In one transaction, so that the server's first claim finds all 15 and takes a full batch.
        await db.transaction().execute(async (trx) => {
          for (let n = 0; n < 15; n++) {
            const message = {
              id: newId(),
              type: 'test.crash',
              timestamp: epochSeconds(systemClock),
              data: { n },
            }
            ids.push(...(await outbox.enqueue(trx, message)))
          }
        })
      } finally {
        await db.destroy()
      }

      // One batch (10) is under way, unanswered; the other 5 wait for it.
      await hook.waitFor(() => hook.received.length >= 10, 10_000, 'the first batch')
      first.child.kill('SIGKILL')
      await once(first.child, 'exit')
      assert.equal(hook.received.length, 10)
      assert.deepEqual(hook.acceptedIds(), [])

      hook.respond = () => 204
      const second = await startServer({ env })
      servers.push(second)
      await hook.waitFor(() => new Set(hook.acceptedIds()).size === 15, 20_000, 'every delivery')
      const accepted = hook.acceptedIds()
      assert.deepEqual(new Set(accepted), new Set(ids), 'nothing is lost')
      assert.equal(accepted.length, 15, 'each is accepted once')
      for (const entry of hook.received) assertSigned(entry, TEST_WEBHOOK_SECRET)
      assert.equal(await second.stop(), 0)

      const output = first.output() + second.output()
      for (const secret of [TEST_WEBHOOK_SECRET.slice('whsec_'.length), '/hooks/tessera']) {
        assert.ok(!output.includes(secret), `the log holds ${secret}`)
      }
      for (const entry of hook.received) assert.ok(!output.includes(entry.signature.split(',')[1] ?? '-'))
    } finally {
      await hook.close()
    }
  })
})
