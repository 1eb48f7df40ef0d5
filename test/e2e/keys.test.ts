// Tokens that other services can verify without Tessera's help: asymmetric algorithms, a JWKS, discovery,
// and rotation without downtime. Verification here is done by implementations other than the one that
// signs (fast-jwt): jose, fed only the JWKS, and node:crypto by hand.
import assert from 'node:assert/strict'
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  randomBytes,
  verify,
} from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDb } from '../../src/db/create-db.ts'
import { migrateToLatest } from '../../src/db/migrator.ts'
import { createKeyEncryption } from '../../src/keys/key-encryption.ts'
import { createKeyRepositoryFor, retirementGraceSeconds, rotateSigningKey } from '../../src/keys/key-store.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, TEST_ENV, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, login, registerUser } from '../helpers/fixtures.ts'
import { sharedTestDatabases } from '../helpers/test-database.ts'

const ASYMMETRIC = ['EdDSA', 'ES256', 'RS256'] as const

// Databases shared by several apps of one test: SQLite files, or PostgreSQL schemas.
const databases = sharedTestDatabases()
after(() => databases.dropAll())

function parts(token: string) {
  const [header, payload, signature] = token.split('.')
  const decode = (part = '') => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  return {
    header: decode(header),
    payload: decode(payload),
    signature: Buffer.from(signature ?? '', 'base64url'),
  }
}

/** RFC 7638, computed here by hand: the required members in lexicographic order, no whitespace, SHA-256. */
function thumbprint(jwk: JsonWebKey): string {
  const members: Record<string, string[]> = {
    OKP: ['crv', 'kty', 'x'],
    EC: ['crv', 'kty', 'x', 'y'],
    RSA: ['e', 'kty', 'n'],
  }
  const required = members[String(jwk.kty)] ?? []
  const json = `{${required.map((name) => `"${name}":"${String(jwk[name as keyof JsonWebKey])}"`).join(',')}}`
  return createHash('sha256').update(json).digest('base64url')
}

/** Verifies a JWS signature with node:crypto alone, from the published JWK. */
function verifiesWithNodeCrypto(token: string, jwk: JsonWebKey, alg: string): boolean {
  const [header, payload, signature] = token.split('.')
  const data = Buffer.from(`${header}.${payload}`)
  const key = createPublicKey({ key: jwk, format: 'jwk' })
  const sig = Buffer.from(signature ?? '', 'base64url')
  if (alg === 'EdDSA') return verify(null, data, key, sig)
  if (alg === 'ES256') return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
  return verify('sha256', data, key, sig)
}

async function jwksOf(t: TestApp) {
  const response = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  assert.equal(response.statusCode, 200)
  return { response, keys: response.json().keys as (JsonWebKey & { kid: string; alg: string })[] }
}

for (const alg of ASYMMETRIC) {
  describe(`${alg} signing, verified by other implementations from the JWKS alone`, () => {
    let t: TestApp
    before(async () => {
      t = await buildTestApp({ env: { JWT_ALGORITHM: alg } })
    })
    after(() => t.close())

    it('signs with the configured algorithm and a kid that is the RFC 7638 thumbprint of the published key', async () => {
      const user = await registerUser(t.app)
      const { header } = parts(user.token)
      assert.equal(header.alg, alg)
      assert.equal(header.typ, 'at+jwt')
      const { keys } = await jwksOf(t)
      const jwk = keys.find((k) => k.kid === header.kid)
      assert.ok(jwk, 'the signing key is published')
      assert.equal(jwk.alg, alg)
      assert.equal(jwk.use, 'sig')
      assert.equal(thumbprint(jwk), header.kid)
      for (const privateMember of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.ok(!(privateMember in jwk))
      if (alg === 'RS256') assert.ok(Buffer.from(String(jwk.n), 'base64url').length * 8 >= 2048)
    })

    it('verifies with jose, given only the JWKS document, issuer and audience', async () => {
      const user = await registerUser(t.app)
      const { response } = await jwksOf(t)
      const { payload, protectedHeader } = await jwtVerify(user.token, createLocalJWKSet(response.json()), {
        issuer: 'http://tessera.test',
        audience: 'tessera',
        typ: 'at+jwt',
        algorithms: [alg],
      })
      assert.equal(payload.sub, user.id)
      assert.equal(protectedHeader.alg, alg)
    })

    it('verifies with node:crypto by hand, and fails there once a byte of the payload changes', async () => {
      const user = await registerUser(t.app)
      const { keys } = await jwksOf(t)
      const jwk = keys.find((k) => k.kid === parts(user.token).header.kid)
      assert.ok(jwk)
      assert.ok(verifiesWithNodeCrypto(user.token, jwk, alg))
      const [h, p, s] = user.token.split('.')
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...parts(user.token).payload, roles: ['admin'] })).toString('base64url')}.${s}`
      assert.ok(p && !verifiesWithNodeCrypto(tampered, jwk, alg))
    })

    it('refuses key confusion: an HS256 token whose HMAC secret is the published public key', async () => {
      const user = await registerUser(t.app)
      const { keys } = await jwksOf(t)
      const jwk = keys.find((k) => k.kid === parts(user.token).header.kid)
      assert.ok(jwk)
      const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'pem', type: 'spki' })
      const { payload, header } = parts(user.token)
      const forged = await new SignJWT(payload)
        .setProtectedHeader({ ...header, alg: 'HS256' })
        .sign(new TextEncoder().encode(String(pem)))
      assertProblem(
        await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(forged) }),
        401,
        'invalid_token',
      )
    })

    it("publishes discovery metadata pointing at the JWKS, with the tokens' issuer", async () => {
      for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
        const metadata = (await t.app.inject({ method: 'GET', url: path })).json()
        assert.equal(metadata.issuer, 'http://tessera.test')
        assert.equal(metadata.jwks_uri, 'http://tessera.test/.well-known/jwks.json')
      }
    })
  })
}

describe('HMAC keys are never published', () => {
  it('serves an empty JWKS with HS256, and the JWKS is cacheable', async () => {
    const t = await buildTestApp()
    try {
      const { response, keys } = await jwksOf(t)
      assert.deepEqual(keys, [])
      assert.match(String(response.headers['cache-control']), /public, max-age=\d+/)
    } finally {
      await t.close()
    }
  })
})

describe('a configured key', () => {
  for (const format of ['PEM', 'JWK'] as const) {
    it(`accepts tokens signed elsewhere (by jose) with the ES256 key given as ${format} in JWT_PRIVATE_KEY`, async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const text =
        format === 'PEM'
          ? String(privateKey.export({ format: 'pem', type: 'pkcs8' }))
          : JSON.stringify(privateKey.export({ format: 'jwk' }))
      const t = await buildTestApp({ env: { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: text } })
      try {
        const user = await registerUser(t.app)
        const { header, payload } = parts(user.token)
        const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' })
        assert.equal(header.kid, thumbprint(publicJwk), 'the configured key signs')
        // Another issuer holding the same key mints a token for the same user and session.
        const minted = await new SignJWT({ ...payload, jti: 'minted-elsewhere' })
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: header.kid })
          .sign(await importJWK(privateKey.export({ format: 'jwk' }), 'ES256'))
        const response = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(minted) })
        assert.equal(response.statusCode, 200, response.body)
      } finally {
        await t.close()
      }
    })
  }

  it('refuses at start a key that does not suit the algorithm', async () => {
    const { privateKey } = generateKeyPairSync('ed25519')
    const pem = String(privateKey.export({ format: 'pem', type: 'pkcs8' }))
    await assert.rejects(
      buildTestApp({ env: { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem } }),
      /ES256 needs a P-256/,
    )
  })
})

describe('signing keys at rest', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-keys-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('are encrypted with KEY_ENCRYPTION_SECRET, and unreadable without it', async () => {
    const env = {
      DATABASE_URL: await databases.url(join(dir, 'enc.db')),
      JWT_ALGORITHM: 'EdDSA',
      KEY_ENCRYPTION_SECRET: 'keys-at-rest-encryption-secret-0123456789',
    }
    const first = await buildTestApp({ env })
    const token = (await registerUser(first.app)).token
    const stored = await first.deps.db.selectFrom('signing_keys').select('private_jwk').execute()
    await first.close()
    assert.equal(stored.length, 1)
    assert.match(
      stored[0]?.private_jwk ?? '',
      /^ey[\w-]+\.\.[\w-]+\.[\w-]+\.[\w-]+$/,
      'a compact JWE with dir',
    )
    assert.ok(!stored[0]?.private_jwk.includes('"d"'))

    const again = await buildTestApp({ env })
    assert.equal(
      (await again.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })).statusCode,
      200,
    )
    await again.close()
    await assert.rejects(
      buildTestApp({ env: { ...env, KEY_ENCRYPTION_SECRET: undefined as unknown as string } }),
      /KEY_ENCRYPTION_SECRET/,
    )
    await assert.rejects(
      buildTestApp({ env: { ...env, KEY_ENCRYPTION_SECRET: 'another-encryption-secret-than-the-first' } }),
      /cannot be decrypted/,
    )
  })
})

describe('rotation without downtime', () => {
  const clock = createFixedClock(Date.now())
  let dir: string
  let running: TestApp
  let env: Record<string, string>
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-rotate-'))
    env = { DATABASE_URL: await databases.url(join(dir, 'rotate.db')), JWT_ALGORITHM: 'EdDSA' }
    running = await buildTestApp({ env, overrides: { clock } })
  })
  after(async () => {
    await running.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('keeps old and new tokens working on a running server until the old ones expire, then prunes the old key', async () => {
    const user = await registerUser(running.app)
    const oldToken = user.token
    const oldKid = parts(oldToken).header.kid

    // `tessera keys rotate`, run elsewhere against the same database.
    const config = loadConfig({ ...TEST_ENV, ...env })
    const db = createDb(config.database)
    const keys = createKeyRepositoryFor(db, config)
    const newKid = await rotateSigningKey(keys, clock, 'EdDSA')
    assert.notEqual(newKid, oldKid)

    // Another instance, started after the rotation, signs with the new key.
    clock.advance(10_000)
    const other = await buildTestApp({ env, overrides: { clock } })
    try {
      const newToken = await login(other.app, user.username, user.password)
      assert.equal(parts(newToken).header.kid, newKid)

      // The running server has not restarted: it learns the new key from the token's unknown kid.
      const me = (token: string) =>
        running.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })
      assert.equal((await me(newToken)).statusCode, 200)
      assert.equal((await me(oldToken)).statusCode, 200)
      const published = (await jwksOf(running)).keys.map((k) => k.kid).sort()
      assert.deepEqual(published, [newKid, oldKid].sort())
      const fresh = await login(running.app, user.username, user.password)
      assert.equal(
        parts(fresh).header.kid,
        newKid,
        'after the reload, the running server signs with the new key',
      )

      // Until the old tokens expire, pruning keeps the old key.
      const grace = retirementGraceSeconds(config) * 1000
      assert.deepEqual(await keys.prune(Math.floor(clock.now() / 1000) - grace / 1000), [])
      clock.advance(grace)
      // The key's grace ends when the last token it can have signed expires: the token is refused either way.
      assert.equal((await me(oldToken)).statusCode, 401)
      assert.deepEqual(await keys.prune(Math.floor(clock.now() / 1000) - grace / 1000), [oldKid])
      await running.deps.access.keyStore.reload()
      assert.deepEqual(
        (await jwksOf(running)).keys.map((k) => k.kid),
        [newKid],
      )
    } finally {
      await other.close()
      await db.destroy()
    }
  })
})

describe('who may change the signing key', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-provision-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('in production, refuses to start when JWT_ALGORITHM differs from the active key, instead of replacing it', async () => {
    const env = { DATABASE_URL: await databases.url(join(dir, 'prod.db')), JWT_ALGORITHM: 'EdDSA' }
    const first = await buildTestApp({ env })
    const kid = first.deps.access.keyStore.signingKey().kid
    await first.close()
    await assert.rejects(
      buildTestApp({ env: { ...env, NODE_ENV: 'production', JWT_ALGORITHM: 'HS256' } }),
      /The active signing key is EdDSA but JWT_ALGORITHM is HS256/,
    )
    const again = await buildTestApp({ env: { ...env, NODE_ENV: 'production' } })
    assert.equal(
      again.deps.access.keyStore.signingKey().kid,
      kid,
      'the EdDSA key is still the one that signs',
    )
    await again.close()
  })

  it('retires a stored key once JWT_SECRET replaces it: it verifies only during its grace period', async () => {
    const env = { DATABASE_URL: await databases.url(join(dir, 'secret.db')) }
    const first = await buildTestApp({ env })
    const oldToken = (await registerUser(first.app)).token
    await first.close()
    const clock = createFixedClock(Date.now())
    const withSecret = await buildTestApp({
      env: { ...env, JWT_SECRET: 'a-jwt-secret-that-replaces-the-stored-key' },
      overrides: { clock },
    })
    try {
      const states = await withSecret.deps.db.selectFrom('signing_keys').select('state').execute()
      assert.deepEqual(
        states.map((row) => row.state),
        ['retired'],
      )
      const me = () => withSecret.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(oldToken) })
      assert.equal((await me()).statusCode, 200)
      clock.advance(retirementGraceSeconds(withSecret.deps.config) * 1000)
      assert.equal((await me()).statusCode, 401)
    } finally {
      await withSecret.close()
    }
  })
})

describe('issue 11: the refresh-token server secret at rest', () => {
  const KEY_ENCRYPTION_SECRET = 'server-secret-encryption-secret-0123456789'
  // HS256 with a configured secret: no signing key is stored, so the server secret is all that is sealed.
  const JWT_SECRET = 'server-secret-suite-jwt-secret-0123456789'
  const JWE = /^ey[\w-]+\.\.[\w-]+\.[\w-]+\.[\w-]+$/
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-server-secret-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  type Grant = { access_token: string; refresh_token: string }
  const logIn = async (t: TestApp, user: { username: string; password: string }): Promise<Grant> => {
    const payload = { username: user.username, password: user.password }
    const response = await t.app.inject({ method: 'POST', url: '/auth/login', payload })
    assert.equal(response.statusCode, 200, response.body)
    return response.json()
  }
  const refresh = (t: TestApp, token: string) =>
    t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
  // The secret behind refresh tokens (others, such as the key of event-name hashes, are kept alike).
  const storedSecrets = (t: TestApp) =>
    t.deps.db
      .selectFrom('server_secrets')
      .select(['name', 'value'])
      .where('name', '=', 'refresh-token-rotation')
      .execute()

  it('with KEY_ENCRYPTION_SECRET set, server_secrets holds it sealed (a JWE), not the plain secret; it reads back after a restart, and not without that secret', async () => {
    const env = {
      DATABASE_URL: await databases.url(join(dir, 'sealed.db')),
      JWT_SECRET,
      KEY_ENCRYPTION_SECRET,
    }
    const first = await buildTestApp({ env })
    const user = await registerUser(first.app)
    const grant = await logIn(first, user)
    const rows = await storedSecrets(first)
    await first.close()
    assert.deepEqual(
      rows.map((row) => row.name),
      ['refresh-token-rotation'],
    )
    const stored = rows[0]?.value ?? ''
    assert.match(stored, JWE)
    const secret = String((await createKeyEncryption(KEY_ENCRYPTION_SECRET).open(stored)).k)
    assert.equal(Buffer.from(secret, 'base64url').length, 32)
    assert.ok(!stored.includes(secret), 'the plain secret is not stored')

    const again = await buildTestApp({ env })
    try {
      const response = await refresh(again, grant.refresh_token)
      assert.equal(response.statusCode, 200, response.body)
    } finally {
      await again.close()
    }
    const { KEY_ENCRYPTION_SECRET: _, ...without } = env
    await assert.rejects(
      buildTestApp({ env: without }),
      /The server secret "refresh-token-rotation" in the database is encrypted: set KEY_ENCRYPTION_SECRET/,
    )
    await assert.rejects(
      buildTestApp({ env: { ...env, KEY_ENCRYPTION_SECRET: 'another-encryption-secret-than-the-first' } }),
      /cannot be decrypted with this KEY_ENCRYPTION_SECRET/,
    )
  })

  it('on a database made by the previous release (the secret in the clear), seals it at the first start with KEY_ENCRYPTION_SECRET, unchanged: refresh tokens issued before still refresh', async () => {
    const clock = createFixedClock(Date.now())
    const url = await databases.url(join(dir, 'previous-release.db'))
    // The database as the previous release left it: migrated, and the secret as its getOrCreateServerSecret
    // wrote it (`git show HEAD~1:src/keys/server-secret.ts`): 32 random bytes, base64url.
    const previous = createDb(loadConfig({ ...TEST_ENV, DATABASE_URL: url }).database)
    const plain = randomBytes(32).toString('base64url')
    try {
      await migrateToLatest(previous)
      await previous
        .insertInto('server_secrets')
        .values({ name: 'refresh-token-rotation', value: plain, created_at: Math.floor(clock.now() / 1000) })
        .execute()
    } finally {
      await previous.destroy()
    }

    // Tokens issued before the upgrade, on that secret: a session refreshed once (its first token spent).
    const before = await buildTestApp({ env: { DATABASE_URL: url, JWT_SECRET }, overrides: { clock } })
    const user = await registerUser(before.app)
    const first = await logIn(before, user)
    const rotated = await refresh(before, first.refresh_token)
    assert.equal(rotated.statusCode, 200, rotated.body)
    const second: Grant = rotated.json()
    assert.deepEqual(
      (await storedSecrets(before)).map((row) => row.value),
      [plain],
      'without KEY_ENCRYPTION_SECRET it stays as the previous release reads it',
    )
    await before.close()

    const after = await buildTestApp({
      env: { DATABASE_URL: url, JWT_SECRET, KEY_ENCRYPTION_SECRET },
      overrides: { clock },
    })
    try {
      const stored = (await storedSecrets(after))[0]?.value ?? ''
      assert.match(stored, JWE, 'sealed at start')
      assert.equal(
        (await createKeyEncryption(KEY_ENCRYPTION_SECRET).open(stored)).k,
        plain,
        'the same secret',
      )
      // Within the reuse window, a repeat of the token spent before the upgrade gets the same successor: the
      // server derives it from the secret, so this holds only if the secret is the one it was issued under.
      const repeat = await refresh(after, first.refresh_token)
      assert.equal(repeat.statusCode, 200, repeat.body)
      assert.equal(repeat.json().refresh_token, second.refresh_token)
      const next = await refresh(after, second.refresh_token)
      assert.equal(next.statusCode, 200, next.body)
      const me = await after.app.inject({
        method: 'GET',
        url: '/auth/me',
        headers: bearer(next.json().access_token),
      })
      assert.equal(me.statusCode, 200, me.body)
    } finally {
      await after.close()
    }
  })
})
