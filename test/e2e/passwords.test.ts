// Passwords through HTTP: the length rules, logins of users migrated from the Flask app with bcrypt hashes,
// the upgrade of old hashes at login, bcrypt's 72-byte limit, listed passwords disguised with spaces, invisible
// characters or marks, and login timing that does not reveal users.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type Algorithm, hash as argon2Hash } from '@node-rs/argon2'
import { hash as bcryptHash } from '@node-rs/bcrypt'
import { usernameKey } from '../../src/access/username.ts'
import { createPasswordHasher } from '../../src/auth/password-hasher.ts'
import { newId } from '../../src/lib/ids.ts'
import { buildTestApp, TEST_ARGON2, type TestApp } from '../helpers/build-test-app.ts'
import {
  assertProblem,
  bearer,
  login,
  registerUser,
  type TestUser,
  uniqueUsername,
} from '../helpers/fixtures.ts'

// `Algorithm` is a const enum in @node-rs/argon2's types; its runtime value for argon2id is 2.
const ARGON2ID = 2 as Algorithm
const TEST_ARGON2_PREFIX = `$argon2id$v=19$m=${TEST_ARGON2.memoryKib},t=${TEST_ARGON2.iterations},p=${TEST_ARGON2.parallelism}$`

async function postLogin(t: TestApp, username: string, password: string) {
  return t.app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
}

/** Inserts a user row with the given hash, as the migration from the Flask app did. */
async function insertUser(t: TestApp, passwordHash: string): Promise<{ id: string; username: string }> {
  const username = uniqueUsername('legacy')
  const id = newId()
  const now = Math.floor(t.deps.clock.now() / 1000)
  await t.deps.repositories.users.insert({
    id,
    username,
    usernameKey: usernameKey(username),
    firstName: 'Legacy',
    lastName: 'User',
    passwordHash,
    roles: ['user'],
    createdAt: now,
    updatedAt: now,
  })
  return { id, username }
}

async function storedHash(t: TestApp, username: string): Promise<string> {
  const found = await t.deps.repositories.users.findCredentials(usernameKey(username))
  assert.ok(found, `no user ${username}`)
  return found.passwordHash
}

/** A password of `length` characters that no list of common passwords holds ("pppppppp" is in them). */
const ofLength = (length: number, seed: string) =>
  seed.repeat(Math.ceil(length / seed.length)).slice(0, length)

const LENGTHS = [
  { length: 7, accepted: false },
  { length: 8, accepted: true },
  { length: 256, accepted: true },
  { length: 257, accepted: false },
]

describe('password rules and stored hashes', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  for (const { length, accepted } of LENGTHS) {
    it(`${accepted ? 'accepts' : 'refuses'} a password of ${length} characters at registration`, async () => {
      const username = uniqueUsername('len')
      const password = ofLength(length, 'p4Zr!kqW')
      const response = await t.app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { username, password, firstName: 'Ada', lastName: 'Lovelace' },
      })
      if (accepted) {
        assert.equal(response.statusCode, 201, response.body)
        await login(t.app, username, password)
      } else {
        const problem = assertProblem(response, 400, 'validation_failed')
        assert.deepEqual(
          problem.errors.map((e: { field: string }) => e.field),
          ['/body/password'],
        )
      }
    })

    it(`${accepted ? 'accepts' : 'refuses'} a new password of ${length} characters on POST /users/me/password`, async () => {
      const user = await registerUser(t.app)
      const newPassword = ofLength(length, 'n7Tx?vcJ')
      const response = await t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        headers: bearer(user.token),
        payload: { currentPassword: user.password, newPassword },
      })
      if (accepted) {
        assert.equal(response.statusCode, 204, response.body)
        await login(t.app, user.username, newPassword)
      } else {
        const problem = assertProblem(response, 400, 'validation_failed')
        assert.deepEqual(
          problem.errors.map((e: { field: string }) => e.field),
          ['/body/newPassword'],
        )
        await login(t.app, user.username, user.password)
      }
    })
  }

  for (const prefix of ['$2b$', '$2a$', '$2y$']) {
    it(`logs in a Flask-Bcrypt user (${prefix} hash) and replaces the hash with argon2id`, async () => {
      const password = 'flask era password'
      const bcrypt = await bcryptHash(password, 4)
      assert.match(bcrypt, /^\$2[aby]\$04\$/)
      const { username } = await insertUser(t, prefix + bcrypt.slice(4))

      await login(t.app, username, password)
      const upgraded = await storedHash(t, username)
      assert.ok(upgraded.startsWith(TEST_ARGON2_PREFIX), upgraded)

      await login(t.app, username, password)
      assert.equal(await storedHash(t, username), upgraded, 'a current hash is not rewritten at every login')
      assertProblem(await postLogin(t, username, 'not the password'), 401, 'invalid_credentials')
    })
  }

  it('refuses lone UTF-16 surrogates in any body field, which would hash and store as U+FFFD', async () => {
    for (const field of ['password', 'firstName']) {
      const fields: Record<string, string> = {
        username: `"${uniqueUsername('sur')}"`,
        password: '"long enough password"',
        firstName: '"A"',
        lastName: '"L"',
      }
      fields[field] = `"${'\\ud800'.repeat(8)}"`
      const body = `{${Object.entries(fields)
        .map(([k, v]) => `"${k}":${v}`)
        .join(',')}}`
      const response = await t.app.inject({
        method: 'POST',
        url: '/auth/register',
        headers: { 'content-type': 'application/json' },
        payload: body,
      })
      assertProblem(response, 400, 'malformed_request')
    }
  })

  it('refuses a NUL character in any body field, which PostgreSQL cannot store (a login with one was a 500)', async () => {
    const requests = [
      { url: '/auth/login', payload: { username: '\u0000ada', password: 'whatever it is' } },
      { url: '/auth/login', payload: { username: 'ada', password: 'a password\u0000' } },
      {
        url: '/auth/register',
        payload: {
          username: uniqueUsername('nul'),
          password: 'long enough password',
          firstName: 'A\u0000',
          lastName: 'L',
        },
      },
      { url: '/auth/password-reset', payload: { token: '\u0000', newPassword: 'long enough password' } },
    ]
    for (const { url, payload } of requests) {
      const body = assertProblem(
        await t.app.inject({ method: 'POST', url, payload }),
        400,
        'malformed_request',
      )
      assert.match(body.detail, /NUL/)
    }
  })

  it('does not upgrade a bcrypt hash on a failed login', async () => {
    const bcrypt = await bcryptHash('flask era password', 4)
    const { username } = await insertUser(t, bcrypt)
    assertProblem(await postLogin(t, username, 'a wrong password'), 401, 'invalid_credentials')
    assert.equal(await storedHash(t, username), bcrypt)
  })

  it('rehashes at login an argon2id hash weaker than the configured parameters', async () => {
    const password = 'weakly hashed password'
    const weak = await argon2Hash(password, {
      algorithm: ARGON2ID,
      memoryCost: 512,
      timeCost: TEST_ARGON2.iterations,
      parallelism: TEST_ARGON2.parallelism,
    })
    assert.ok(weak.startsWith('$argon2id$v=19$m=512,'))
    const { username } = await insertUser(t, weak)

    await login(t.app, username, password)
    const upgraded = await storedHash(t, username)
    assert.ok(upgraded.startsWith(TEST_ARGON2_PREFIX), upgraded)
    await login(t.app, username, password)
  })

  describe("bcrypt's 72-byte limit", () => {
    // bcrypt reads only the first 72 bytes, so these two passwords have one and the same bcrypt hash.
    const shared = 'b'.repeat(72)
    const original = `${shared}original`
    const impostor = `${shared}impostor`
    let username: string

    before(async () => {
      assert.equal(Buffer.byteLength(original), 80)
      username = (await insertUser(t, await bcryptHash(original, 4))).username
    })

    it('refuses another password that shares the first 72 bytes', async () => {
      assertProblem(await postLogin(t, username, impostor), 401, 'invalid_credentials')
    })

    it('refuses any password over 72 bytes against a bcrypt hash, the original one too (reset needed)', async () => {
      assertProblem(await postLogin(t, username, original), 401, 'invalid_credentials')
      // 36 two-byte characters: within the length rules, but 72 bytes plus one more is over the limit.
      const multibyte = await insertUser(t, await bcryptHash(`${'é'.repeat(36)}x`, 4))
      assertProblem(await postLogin(t, multibyte.username, `${'é'.repeat(36)}x`), 401, 'invalid_credentials')
    })
  })
})

describe('a listed password with spaces, invisible characters or marks added is still too common (outside attack, issue 11)', () => {
  let t: TestApp
  let user: TestUser
  before(async () => {
    t = await buildTestApp()
    user = await registerUser(t.app)
  })
  after(() => t.close())

  const register = (password: string, username = uniqueUsername('disguised')) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username, password, firstName: 'Ada', lastName: 'Lovelace' },
    })
  const changePassword = (newPassword: string) =>
    t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(user.token),
      payload: { currentPassword: user.password, newPassword },
    })
  /** The message of the one field error of a 400 validation_failed, which names `field`. */
  const refusal = (response: Parameters<typeof assertProblem>[0], field: string) => {
    const problem = assertProblem(response, 400, 'validation_failed')
    assert.deepEqual(
      problem.errors.map((e: { field: string }) => e.field),
      [field],
    )
    return problem.errors[0].message as string
  }

  // password1234, iloveyou1, 1234567, michigan and istanbul are on the list; each of these was accepted.
  const DISGUISED = [
    { added: 'a leading space', password: ' password1234' },
    { added: 'a trailing tab', password: 'password1234\t' },
    { added: 'no-break and ideographic spaces at both ends', password: '\u00a0iloveyou1\u3000 ' },
    { added: 'a soft hyphen (U+00AD)', password: 'pass\u00adword1234' },
    { added: 'a zero-width space (U+200B)', password: 'pass\u200bword1234' },
    { added: 'a zero-width non-joiner and joiner (U+200C, U+200D)', password: 'pass\u200cword\u200d1234' },
    { added: 'a word joiner (U+2060)', password: 'pass\u2060word1234' },
    { added: 'a byte order mark (U+FEFF)', password: '\ufeffpassword1234' },
    { added: 'a variation selector (U+FE0F)', password: 'password1234\ufe0f' },
    { added: 'a trailing combining mark (U+0301)', password: 'password1234\u0301' },
    { added: 'accents on precomposed letters', password: 'mìchígan' },
    { added: 'U+0130, which lower-cases to "i" and a combining dot', password: 'İstanbul' },
    { added: 'U+0130 inside the word', password: 'mİchigan' },
    { added: 'a zero-width space that makes a 7-character one long enough', password: '1234567\u200b' },
  ]

  for (const { added, password } of DISGUISED) {
    it(`refuses at registration a listed password with ${added}`, async () => {
      assert.match(refusal(await register(password), '/body/password'), /too common/)
    })

    it(`refuses at password change a listed password with ${added}; the old one still works`, async () => {
      assert.match(refusal(await changePassword(password), '/body/newPassword'), /too common/)
      await login(t.app, user.username, user.password)
    })
  }

  it('refuses a password of nothing but spaces and invisible characters (the list holds passwords of spaces)', async () => {
    for (const password of [' '.repeat(8), '\u200b'.repeat(8), ' \u00ad\t\u2060 \ufeff\u200c ']) {
      const message = refusal(await register(password), '/body/password')
      assert.match(message, /too common/, JSON.stringify(password))
    }
  })

  it('refuses the username, or a password containing it, with invisible characters or marks inside', async () => {
    const username = uniqueUsername('katherine')
    const [first = '', ...rest] = username
    assert.equal(
      refusal(await register(`${first}\u200b${rest.join('')}\u0301`, username), '/body/password'),
      'must not be the username',
    )
    assert.equal(
      refusal(await register(`call me ${first}\u00ad${rest.join('\u2060')} `, username), '/body/password'),
      'must not contain the username',
    )
  })

  it('accepts an uncommon password with accents and spaces inside, at registration and password change', async () => {
    const username = uniqueUsername('gourmet')
    const response = await register('crème brûlée à minuit', username)
    assert.equal(response.statusCode, 201, response.body)
    await login(t.app, username, 'crème brûlée à minuit')
    const other = await registerUser(t.app)
    const changed = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(other.token),
      payload: { currentPassword: other.password, newPassword: 'Ångström au café noir' },
    })
    assert.equal(changed.statusCode, 204, changed.body)
    await login(t.app, other.username, 'Ångström au café noir')
  })
})

describe('login timing with production argon2id parameters', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({
      overrides: { hasher: createPasswordHasher({ memoryKib: 19456, iterations: 2, parallelism: 1 }) },
    })
  })
  after(() => t.close())

  it('takes about as long for an unknown user as for a wrong password of an existing one', async () => {
    const user = await registerUser(t.app)
    const timeLogin = async (username: string) => {
      const start = process.hrtime.bigint()
      const response = await postLogin(t, username, 'not the password')
      const elapsed = Number(process.hrtime.bigint() - start) / 1e6
      assertProblem(response, 401, 'invalid_credentials')
      return elapsed
    }
    // The first login of an unknown user also computes the dummy hash; warm both paths up before measuring.
    await timeLogin('nobody_at_all')
    await timeLogin(user.username)

    const unknown: number[] = []
    const wrongPassword: number[] = []
    for (let i = 0; i < 15; i++) {
      unknown.push(await timeLogin(`nobody_${i}`))
      wrongPassword.push(await timeLogin(user.username))
    }
    const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0
    const ratio = median(unknown) / median(wrongPassword)
    assert.ok(
      ratio > 0.5 && ratio < 2,
      `median ${median(unknown).toFixed(1)} ms for unknown users vs ${median(wrongPassword).toFixed(1)} ms ` +
        `for a wrong password (ratio ${ratio.toFixed(2)})`,
    )
  })
})
