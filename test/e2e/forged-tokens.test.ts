// Forged and invalid access tokens against GET /auth/me. The tests are the attacker: every token is built by
// hand with node:crypto, and each case changes one thing from a token the server accepts (the first specs).
// Every forgery is answered 401 invalid_token (token_expired when only the expiry is wrong), never a 5xx.
import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync, type KeyObject, randomBytes, randomUUID, sign } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, createAdmin, registerUser, type TestUser } from '../helpers/fixtures.ts'

/** The server's HMAC key, configured so that the attacker-side code can sign what the server would accept. */
const SERVER_SECRET = 'forged-tokens-suite-server-secret-0123456789'
const clock = createFixedClock()
const NOW = Math.floor(clock.now() / 1000)
const ISSUER = 'http://tessera.test'
const AUDIENCE = 'tessera'

type Json = Record<string, unknown>

/** base64url of a JSON value, or of a string taken as it is. Properties set to undefined are dropped. */
function encode(part: Json | unknown[] | string): string {
  return Buffer.from(typeof part === 'string' ? part : JSON.stringify(part)).toString('base64url')
}

/** A JWS whose signature is HMAC over `header.payload` with any secret, whatever alg the header claims. */
function signHmac(header: Json, payload: Json, secret: string | Buffer, hash = 'sha256'): string {
  const input = `${encode(header)}.${encode(payload)}`
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`
}

/** A JWS signed RS256 with an RSA private key. */
function signRsa(header: Json, payload: Json, privateKey: KeyObject): string {
  const input = `${encode(header)}.${encode(payload)}`
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`
}

function segments(token: string): [string, string, string] {
  const [header = '', payload = '', signature = ''] = token.split('.')
  return [header, payload, signature]
}

/** The token with its payload changed and its header and signature kept as they were. */
function tamper(token: string, changes: Json): string {
  const [header, payload, signature] = segments(token)
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Json
  return `${header}.${encode({ ...claims, ...changes })}.${signature}`
}

const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 })
const attackerPublicPem = attacker.publicKey.export({ type: 'spki', format: 'pem' }).toString()
const attackerJwk = { ...attacker.publicKey.export({ format: 'jwk' }), alg: 'RS256', kid: 'attacker' }
const attackerSecret = randomBytes(32)

let t: TestApp
let user: TestUser
let admin: TestUser
let kid: string
let sessionId: string

/** The header the server puts on its tokens; pass a property as undefined to drop it. */
function header(changes: Json = {}): Json {
  return { alg: 'HS256', typ: 'at+jwt', kid, ...changes }
}

/** The claims the server would issue to `user` now; pass a claim as undefined to drop it. */
function claims(changes: Json = {}): Json {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: user.id,
    iat: NOW,
    exp: NOW + 900,
    jti: randomUUID(),
    username: user.username,
    roles: ['user'],
    ver: 0,
    sid: sessionId,
    ...changes,
  }
}

/** Signed with the server's own key: refused only for what the changes make wrong. */
function serverSigned(headerChanges: Json = {}, claimChanges: Json = {}): string {
  return signHmac(header(headerChanges), claims(claimChanges), SERVER_SECRET)
}

type ForgedCase = { name: string; token: () => string; code?: 'token_expired' }

const NONE_CASINGS = ['none', 'None', 'NONE', 'nOnE']

const forgedCases: ForgedCase[] = [
  ...NONE_CASINGS.flatMap((alg): ForgedCase[] => [
    {
      name: `alg "${alg}" with an empty signature`,
      token: () => `${encode(header({ alg }))}.${encode(claims())}.`,
    },
    {
      name: `alg "${alg}" with a signature made with the server's own key`,
      token: () => signHmac(header({ alg }), claims(), SERVER_SECRET),
    },
  ]),
  {
    name: 'alg "none" with no signature segment at all',
    token: () => `${encode(header({ alg: 'none' }))}.${encode(claims())}`,
  },
  {
    name: 'alg RS256 "signed" with HMAC over the server secret (key confusion)',
    token: () => signHmac(header({ alg: 'RS256' }), claims(), SERVER_SECRET),
  },
  {
    name: 'HS256 signed with an RSA public key PEM as the HMAC secret (key confusion)',
    token: () => signHmac(header(), claims(), attackerPublicPem),
  },
  {
    name: 'alg HS512 signed with the server secret: the algorithm is pinned to the key',
    token: () => signHmac(header({ alg: 'HS512' }), claims(), SERVER_SECRET, 'sha512'),
  },
  {
    name: 'alg RS256 properly signed with an RSA key of the attacker',
    token: () => signRsa(header({ alg: 'RS256' }), claims(), attacker.privateKey),
  },
  {
    name: "a real token whose sub is changed to the admin's id, signature kept",
    token: () => tamper(user.token, { sub: admin.id, username: admin.username }),
  },
  {
    name: 'a real token whose roles are changed to admin, signature kept',
    token: () => tamper(user.token, { roles: ['admin', 'user'] }),
  },
  {
    name: 'a real token whose exp is pushed a year ahead, signature kept',
    token: () => tamper(user.token, { exp: NOW + 365 * 86_400 }),
  },
  {
    name: 'the right header and claims, signed with another HMAC key',
    token: () => signHmac(header(), claims(), attackerSecret),
  },
  {
    name: 'a real token with its signature stripped',
    token: () => user.token.slice(0, user.token.lastIndexOf('.') + 1),
  },
  {
    name: 'a real token whose signature is spelled another way (an unused bit of its last character set)',
    token: () => {
      const [header, payload, signature] = segments(user.token)
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      const last = alphabet.indexOf(signature.slice(-1))
      const respelled = signature.slice(0, -1) + alphabet[last ^ 1]
      // The harness: the same signature bytes, in another string.
      assert.deepEqual(Buffer.from(respelled, 'base64url'), Buffer.from(signature, 'base64url'))
      assert.notEqual(respelled, signature)
      return `${header}.${payload}.${respelled}`
    },
  },
  {
    name: "a real token carrying the signature of the admin's token",
    token: () => `${segments(user.token).slice(0, 2).join('.')}.${segments(admin.token)[2]}`,
  },
  {
    name: 'a token that expired an hour ago',
    token: () => serverSigned({}, { iat: NOW - 3600, exp: NOW - 2700 }),
    code: 'token_expired',
  },
  {
    name: 'a token that expired 30 s ago, at the end of the 30 s clock leeway',
    token: () => serverSigned({}, { iat: NOW - 930, exp: NOW - 30 }),
    code: 'token_expired',
  },
  { name: 'a token whose nbf is an hour in the future', token: () => serverSigned({}, { nbf: NOW + 3600 }) },
  { name: 'a token whose nbf is not a number', token: () => serverSigned({}, { nbf: 'now' }) },
  {
    name: 'a token issued (iat) an hour in the future',
    token: () => serverSigned({}, { iat: NOW + 3600, exp: NOW + 4500 }),
  },
  { name: 'a token without exp', token: () => serverSigned({}, { exp: undefined }) },
  { name: 'a token whose exp is a string', token: () => serverSigned({}, { exp: String(NOW + 900) }) },
  { name: 'a token without sub', token: () => serverSigned({}, { sub: undefined }) },
  {
    name: 'a token whose roles claim is a string, not an array',
    token: () => serverSigned({}, { roles: 'admin' }),
  },
  {
    name: 'a token from another issuer (iss)',
    token: () => serverSigned({}, { iss: 'https://evil.example' }),
  },
  { name: 'a token for another audience (aud)', token: () => serverSigned({}, { aud: 'another-api' }) },
  { name: 'a token of typ "JWT" instead of "at+jwt"', token: () => serverSigned({ typ: 'JWT' }) },
  { name: 'a token without typ', token: () => serverSigned({ typ: undefined }) },
  {
    name: 'a token whose crit header names an extension the server does not understand',
    token: () => serverSigned({ crit: ['exp-policy'], 'exp-policy': 'lenient' }),
  },
  { name: 'a token with no sid (session) claim', token: () => serverSigned({}, { sid: undefined }) },
  {
    name: "a token naming a session that does not exist, though the user's own",
    token: () => serverSigned({}, { sid: randomUUID() }),
  },
  {
    name: 'a token longer than 4096 bytes, though signed with the server key',
    token: () => serverSigned({}, { padding: 'x'.repeat(4096) }),
  },
  { name: 'a token of two segments', token: () => segments(user.token).slice(0, 2).join('.') },
  { name: 'a token of four segments', token: () => `${user.token}.${segments(user.token)[2]}` },
  {
    name: 'a token whose header is not base64url',
    token: () => `*%$not-base64*.${segments(user.token).slice(1).join('.')}`,
  },
  {
    name: 'a token whose header is not JSON',
    token: () => `${encode('not json')}.${segments(user.token).slice(1).join('.')}`,
  },
  {
    name: 'a token whose header is a JSON array',
    token: () => `${encode([header()])}.${encode(claims())}.`,
  },
  { name: 'a token whose header is JSON null', token: () => `${encode('null')}.${encode(claims())}.` },
  { name: 'an empty token', token: () => '' },
  { name: 'garbage instead of a token', token: () => 'garbage' },
  { name: 'a token of nothing but dots', token: () => '..' },
  { name: 'a token with kid "../../etc/passwd"', token: () => serverSigned({ kid: '../../etc/passwd' }) },
  { name: 'a token with an unknown kid', token: () => serverSigned({ kid: 'unknown-key-0001' }) },
  { name: 'a token without kid', token: () => serverSigned({ kid: undefined }) },
  { name: 'a token whose kid is a number', token: () => serverSigned({ kid: 42 }) },
  {
    name: 'a token with a jku header, though signed with the server key',
    token: () => serverSigned({ jku: 'https://evil.example/jwks.json' }),
  },
  {
    name: 'a token with an x5u header, though signed with the server key',
    token: () => serverSigned({ x5u: 'https://evil.example/cert.pem' }),
  },
  {
    name: 'a token with an x5c header carrying the attacker key, though signed with the server key',
    token: () =>
      serverSigned({
        x5c: [attacker.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')],
      }),
  },
  {
    name: 'a token with a jwk header embedding an RSA key of the attacker, signed RS256 with it',
    token: () => signRsa(header({ alg: 'RS256', jwk: attackerJwk }), claims(), attacker.privateKey),
  },
  {
    name: 'a token with a jwk header embedding an HMAC key of the attacker, signed HS256 with it',
    token: () =>
      signHmac(
        header({ jwk: { kty: 'oct', k: attackerSecret.toString('base64url'), alg: 'HS256' } }),
        claims(),
        attackerSecret,
      ),
  },
]

describe('forged and invalid access tokens on GET /auth/me', () => {
  before(async () => {
    t = await buildTestApp({ env: { JWT_SECRET: SERVER_SECRET }, overrides: { clock } })
    user = await registerUser(t.app)
    admin = await createAdmin(t.app, t.deps)
    const [issuedHeader] = segments(user.token)
    kid = JSON.parse(Buffer.from(issuedHeader, 'base64url').toString('utf8')).kid
    sessionId = JSON.parse(Buffer.from(segments(user.token)[1], 'base64url').toString('utf8')).sid
    assert.equal(kid, t.deps.access.keyStore.signingKey().kid)
  })
  after(() => t.close())

  async function me(token: string) {
    return t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })
  }

  it('accepts a token built by hand with the server key and the right claims: the harness is sound', async () => {
    const response = await me(serverSigned())
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json().id, user.id)
  })

  it('accepts a token built by hand that expired 29 s ago, within the 30 s clock leeway', async () => {
    const response = await me(serverSigned({}, { iat: NOW - 929, exp: NOW - 29 }))
    assert.equal(response.statusCode, 200, response.body)
  })

  it('accepts the token the server itself issued', async () => {
    const response = await me(user.token)
    assert.equal(response.statusCode, 200, response.body)
  })

  it('accepts the admin token whose signature the forgeries borrow', async () => {
    const response = await me(admin.token)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json().id, admin.id)
  })

  for (const { name, token, code = 'invalid_token' } of forgedCases) {
    it(`refuses ${name}: 401 ${code}`, async () => {
      const response = await me(token())
      assertProblem(response, 401, code)
      assert.match(String(response.headers['www-authenticate']), /^Bearer error="invalid_token"/)
    })
  }
})
