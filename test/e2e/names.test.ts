// Usernames and passwords, from an outside review of issue 11's rules: what passed that should not, and what
// was refused that should pass.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, registerUser } from '../helpers/fixtures.ts'

describe('usernames and passwords after review (issue 11)', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  const register = (username: string, password = 'a long and unusual passphrase') =>
    t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username, password, firstName: 'Ada', lastName: 'Lovelace' },
    })

  it('refuses names that imitate a reserved one with look-alike letters, separators or digits', async () => {
    for (const username of ['ɑdmin', 'ADMİN', 'ʀoot', 'ạdmin', 'ꜱupport', 'admin0', 'adm_in', 'ѕуѕtem']) {
      const response = await register(username)
      assert.equal(response.statusCode, 400, `${username}: ${response.body}`)
      assert.match(response.body, /reserved|mix|not a valid/, username)
    }
  })

  it('accepts usernames whose letters carry combining marks (Devanagari, Tamil, vocalised Arabic)', async () => {
    for (const username of ['राहुल', 'தமிழ்', 'مُحَمَّد']) {
      const response = await register(username)
      assert.equal(response.statusCode, 201, `${username}: ${response.body}`)
    }
  })

  it('refuses a common password whose line in the list ended in CRLF', async () => {
    const response = await register('crlfcheck', 'lololololo')
    assertProblem(response, 400, 'validation_failed')
  })
})

describe('client addresses as stored (issue 13, from review)', () => {
  it('a forwarded IPv6 address with a long zone is stored without it, and the login is answered, not a 500', async () => {
    const t = await buildTestApp({ env: { TRUST_PROXY: 'true' } })
    try {
      const user = await registerUser(t.app)
      const zone = `fe80::1%${'x'.repeat(80)}`
      for (const password of [user.password, 'wrong password']) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/auth/login',
          headers: { 'x-forwarded-for': zone },
          payload: { username: user.username, password },
        })
        assert.ok([200, 401].includes(response.statusCode), response.body)
      }
      const stored = await t.deps.db
        .selectFrom('events')
        .select('ip')
        .where('user_id', '=', user.id)
        .execute()
      assert.ok(stored.some((row) => row.ip === 'fe80::1'))
    } finally {
      await t.close()
    }
  })
})
