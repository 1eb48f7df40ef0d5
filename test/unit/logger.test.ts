import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { serializeError } from '../../src/lib/logger.ts'

describe('errors in the log', () => {
  it('leave out what drivers hang on them: the failed Redis command (AUTH carries the password), the pg client', () => {
    const refused = Object.assign(new Error('WRONGPASS invalid username-password pair'), {
      command: { name: 'hello', args: ['3', 'AUTH', 'default', 'the-redis-password'] },
    })
    const broken = Object.assign(new Error('Connection terminated unexpectedly'), {
      client: { connectionParameters: { password: 'the-pg-password' } },
    })
    const wrapped = new Error('The database is not reachable', { cause: broken })
    for (const error of [refused, broken, wrapped]) {
      const logged = JSON.stringify(serializeError(error))
      assert.doesNotMatch(logged, /the-redis-password|the-pg-password/)
      assert.match(logged, /WRONGPASS|Connection terminated|not reachable/, 'the message itself is kept')
    }
  })
})
