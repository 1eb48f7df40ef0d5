// Issue 13: the parts of the webhook outbox that need no server: its settings, the filter on event types, the
// retry delays, and the wire format checked against the Standard Webhooks library and by hand.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { Webhook } from 'standardwebhooks'
import { ConfigError, loadConfig } from '../../src/config/load-config.ts'
import { retryDelayMs } from '../../src/webhooks/webhook-dispatcher.ts'
import { filterTakes } from '../../src/webhooks/webhook-outbox.ts'
import { createWebhookSigner, webhookPayload } from '../../src/webhooks/webhook-signature.ts'
import { assertSigned, TEST_WEBHOOK_SECRET } from '../helpers/webhook-receiver.ts'

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

const secretOf = (bytes: number) => `whsec_${randomBytes(bytes).toString('base64')}`

describe('issue 13: webhook settings', () => {
  it('has no endpoint without WEBHOOK_URL, and one named events with it', () => {
    assert.deepEqual(loadConfig({}).webhooks.endpoints, [])
    const secret = secretOf(32)
    const config = loadConfig({
      WEBHOOK_URL: 'https://hooks.example.com/tessera',
      WEBHOOK_SECRET: secret,
      WEBHOOK_EVENTS: 'login.failed, user.*',
    })
    assert.deepEqual(config.webhooks.endpoints, [
      {
        name: 'events',
        url: 'https://hooks.example.com/tessera',
        secrets: [secret],
        events: ['login.failed', 'user.*'],
      },
    ])
    assert.equal(config.webhooks.maxAttempts, 30)
    assert.equal(config.webhooks.timeoutMs, 10_000)
  })

  it('refuses WEBHOOK_URL without a secret, and a secret not in the whsec_ form, without echoing it', () => {
    assert.match(
      problemsOf({ WEBHOOK_URL: 'https://hooks.example.com' }).join('\n'),
      /WEBHOOK_URL needs WEBHOOK_SECRET/,
    )
    const typed = 'my webhook secret that a person typed'
    for (const bad of [typed, `whsec_${typed}`, secretOf(16), secretOf(65), 'whsec_', `${secretOf(32)}x`]) {
      const problems = problemsOf({ WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: bad })
      assert.equal(problems.length, 1, bad)
      assert.match(problems[0] ?? '', /WEBHOOK_SECRET must be `whsec_` followed by the base64 of 24 to 64/)
      const fragment = bad.slice(6, 20)
      if (fragment !== '') assert.ok(!(problems[0] ?? '').includes(fragment), 'the secret is not echoed')
    }
    for (const good of [secretOf(24), secretOf(64), `${secretOf(32)} ${secretOf(32)}`]) {
      assert.deepEqual(problemsOf({ WEBHOOK_URL: 'https://hooks.example.com', WEBHOOK_SECRET: good }), [])
    }
  })

  it('refuses a WEBHOOK_URL that is not http(s), without echoing it, and WEBHOOK_EVENTS that names no type', () => {
    const problems = problemsOf({ WEBHOOK_URL: 'ftp://user:pw@example.com/x', WEBHOOK_SECRET: secretOf(32) })
    assert.equal(problems.length, 1)
    assert.match(problems[0] ?? '', /^WEBHOOK_URL must be a http:\/\/ or https:\/\/ URL$/)
    for (const events of ['Login.Failed', 'login failed', ',', 'user.**', '*.failed']) {
      assert.match(problemsOf({ WEBHOOK_EVENTS: events }).join('\n'), /WEBHOOK_EVENTS must be/, events)
    }
  })

  it('takes an event type by name, by family (user.*) or all (*)', () => {
    assert.ok(filterTakes(['*'], 'login.failed'))
    assert.ok(filterTakes(['login.failed'], 'login.failed'))
    assert.ok(filterTakes(['user.*'], 'user.disabled'))
    assert.ok(filterTakes(['user.*'], 'user.role.granted'))
    assert.ok(!filterTakes(['user.*'], 'users.listed'))
    assert.ok(!filterTakes(['user.*'], 'user'))
    assert.ok(!filterTakes(['login.failed'], 'login.succeeded'))
    assert.ok(!filterTakes([], 'login.failed'), 'an endpoint written to by name only takes no event')
  })
})

describe('issue 13: retry delays', () => {
  const config = loadConfig({ WEBHOOK_RETRY_BASE_SECONDS: '10', WEBHOOK_RETRY_MAX_SECONDS: '3600' }).webhooks

  it('doubles from WEBHOOK_RETRY_BASE_SECONDS up to WEBHOOK_RETRY_MAX_SECONDS, drawn between half and all of it', () => {
    const ceilings = [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]
    ceilings.forEach((ceiling, i) => {
      assert.equal(
        retryDelayMs(i + 1, config, () => 0),
        (ceiling * 1000) / 2,
      )
      assert.equal(
        retryDelayMs(i + 1, config, () => 0.5),
        ceiling * 1000 * 0.75,
      )
      const longest = retryDelayMs(i + 1, config, () => 0.999_999)
      assert.ok(longest < ceiling * 1000 && longest > ceiling * 999)
    })
    assert.equal(
      retryDelayMs(100, config, () => 0.5),
      3600 * 1000 * 0.75,
      'no overflow at the last attempts',
    )
  })
})

describe('issue 13: the wire format (Standard Webhooks)', () => {
  it('sends {type, timestamp, data}, the timestamp of the event in RFC 3339', () => {
    const payload = webhookPayload({
      id: 'e1',
      type: 'user.registered',
      timestamp: 1_767_225_600,
      data: { userId: 'u1' },
    })
    assert.equal(
      payload,
      '{"type":"user.registered","timestamp":"2026-01-01T00:00:00.000Z","data":{"userId":"u1"}}',
    )
  })

  it('signs id.timestamp.body with every secret, as the library and a hand-written HMAC both verify', () => {
    const old = secretOf(32)
    const sign = createWebhookSigner([TEST_WEBHOOK_SECRET, old])
    const timestamp = Math.floor(Date.now() / 1000)
    const body = '{"type":"user.registered","timestamp":"2026-01-01T00:00:00.000Z","data":{}}'
    const headers = sign('01J-msg', timestamp, body)
    assert.equal(headers['webhook-id'], '01J-msg')
    assert.equal(headers['webhook-timestamp'], String(timestamp))
    assert.match(headers['webhook-signature'] ?? '', /^v1,[A-Za-z0-9+/]+=* v1,[A-Za-z0-9+/]+=*$/)
    const entry = {
      id: '01J-msg',
      timestamp: String(timestamp),
      signature: headers['webhook-signature'] ?? '',
      contentType: 'application/json',
      authorization: '',
      body,
      status: 204,
    }
    assertSigned(entry, TEST_WEBHOOK_SECRET)
    assertSigned(entry, old)
    assert.throws(() => new Webhook(secretOf(32)).verify(body, headers), /No matching signature/)
    assert.throws(() => new Webhook(TEST_WEBHOOK_SECRET).verify(`${body} `, headers), /No matching signature/)
  })
})
