import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { withEventTable } from '../../src/events/event-docs.ts'
import { EVENT_TYPE_NAMES, EventDetailSchema } from '../../src/events/event-types.ts'

describe('issue 13: the security event types, documented once', () => {
  it('the README lists every event type exactly as event-types.ts declares it (npm run docs:events)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    assert.equal(readme, withEventTable(readme))
    for (const type of EVENT_TYPE_NAMES) assert.ok(readme.includes(`| \`${type}\` |`), type)
  })

  it('has the types the issue asks for, with dotted names', () => {
    for (const type of [
      'user.registered',
      'login.succeeded',
      'login.failed',
      'session.revoked',
      'session.reuse_detected',
      'sessions.revoked_all',
      'password.changed',
      'user.updated',
      'user.disabled',
      'user.enabled',
      'user.deleted',
      'role.granted',
      'role.revoked',
      'key.rotated',
      'key.pruned',
    ]) {
      assert.ok(EVENT_TYPE_NAMES.includes(type as never), type)
    }
    for (const type of EVENT_TYPE_NAMES) assert.match(type, /^[a-z_]+\.[a-z_]+$/)
  })

  it("the API's detail schema allows only the declared properties, none of them a secret", () => {
    assert.equal((EventDetailSchema as { additionalProperties?: unknown }).additionalProperties, false)
    const names = Object.keys(EventDetailSchema.properties)
    assert.deepEqual(
      names.filter((name) => /password|token|secret|^hash$/i.test(name)),
      [],
    )
    assert.deepEqual((EventDetailSchema.properties as Record<string, { enum?: string[] }>).reason?.enum, [
      'unknown_user',
      'wrong_password',
      'disabled',
      'rate_limited',
      'slowed_down',
      'wrong_code',
      'logout',
      'revoked_by_user',
    ])
  })
})
