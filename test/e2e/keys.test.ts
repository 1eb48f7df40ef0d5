// Tokens that other services can verify without Tessera's help: asymmetric algorithms, a JWKS, discovery,
// and rotation without downtime. Verification here is done by implementations other than the one that
// signs (fast-jwt): jose, fed only the JWKS, and node:crypto by hand.
import assert from 'node:assert/strict'
import { createHash, createPublicKey, generateKeyPairSync, type JsonWebKey, verify } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDb } from '../../src/db/create-db.ts'
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
      KEY_ENCRYPTION_SECRET: 'k'.repeat(40),
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
      buildTestApp({ env: { ...env, KEY_ENCRYPTION_SECRET: 'x'.repeat(40) } }),
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
      env: { ...env, JWT_SECRET: 'z'.repeat(40) },
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
