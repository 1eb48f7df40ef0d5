// examples/flask-resource-server, run as its README says, with Debian's python3-flask and python3-jwt: a real
// Tessera signing with EdDSA, and the Flask app trusting its JWKS through PyJWKClient. Tessera is given its
// private key (JWT_PRIVATE_KEY), so that the test can sign tokens with Tessera's own key that differ from a
// real one in exactly one respect (expired, another aud, iss or typ): each is refused for that reason alone,
// since the same tokens with nothing changed are accepted. Issue 18, point 3.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { SignJWT } from 'jose'
import { runTessera } from '../helpers/cli-process.ts'
import { call } from '../helpers/http-client.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import { sharedTestDatabases, testRedisEnv } from '../helpers/test-database.ts'

const PYTHON = '/usr/bin/python3'
const APP = resolve(import.meta.dirname, '../../examples/flask-resource-server/app.py')
const APT = 'apt-get install -y python3-flask python3-jwt python3-cryptography'

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer().once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolvePort(port))
    })
  })
}

/** The example as its README starts it: Debian's python3 and the environment; resolves with its URL. */
function startFlask(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(PYTHON, [APP], {
    env: { PATH: process.env.PATH ?? '', PYTHONUNBUFFERED: '1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  return new Promise((resolveStart, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match?.[1]) resolveStart({ child, url: match[1], output: () => output })
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`the Flask example exited with ${code}:\n${output}`)))
  })
}

const decodePart = (token: string, index: 0 | 1): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString())
const encodePart = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

describe('examples/flask-resource-server', { timeout: 60_000 }, () => {
  const databases = sharedTestDatabases()
  const tesseraKey = generateKeyPairSync('ed25519')
  let dir: string
  let env: Record<string, string>
  let tessera: ServerProcess | undefined
  let flask: { child: ChildProcess; url: string; output: () => string } | undefined
  let user: { token: string; sub: string }
  let admin: { token: string }

  /** GET on the Flask app; a crash (an HTML 500) fails with what the app printed. */
  const get = async (path: string, token?: string) => {
    const response = await fetch(
      `${flask?.url}${path}`,
      token ? { headers: { authorization: `Bearer ${token}` } } : {},
    )
    const text = await response.text()
    if (!response.headers.get('content-type')?.includes('json')) {
      throw new Error(`GET ${path} answered ${response.status} ${text}\n${flask?.output()}`)
    }
    return { status: response.status, headers: response.headers, body: JSON.parse(text) }
  }
  const logIn = async (username: string, password: string) => {
    const login = await call(tessera?.url ?? '', 'POST', '/auth/login', { body: { username, password } })
    assert.equal(login.status, 200, JSON.stringify(login.body))
    return String(login.body.access_token)
  }
  /** A token signed with `key` (Tessera's own by default): a real one's header and claims, then `changes`. */
  const sign = (
    changes: { header?: Record<string, unknown>; claims?: Record<string, unknown> },
    key: KeyObject = tesseraKey.privateKey,
  ) =>
    new SignJWT({ ...decodePart(user.token, 1), ...changes.claims })
      .setProtectedHeader({ ...decodePart(user.token, 0), ...changes.header } as { alg: string })
      .sign(key)

  before(async () => {
    const check = spawnSync(PYTHON, ['-c', 'import flask, jwt, cryptography'], { encoding: 'utf8' })
    if (check.status !== 0) {
      throw new Error(
        `${PYTHON} cannot import flask, jwt and cryptography (${(check.stderr || String(check.error)).trim().split('\n').at(-1)}). Install them: ${APT}`,
      )
    }
    dir = mkdtempSync(join(tmpdir(), 'tessera-flask-'))
    // A fixed port: the issuer (PUBLIC_URL, from HOST and PORT) is then the URL the Flask app is given.
    const port = String(await freePort())
    env = {
      DATABASE_URL: await databases.url(join(dir, 'tessera.db')),
      JWT_ALGORITHM: 'EdDSA',
      ...testRedisEnv(),
    }
    tessera = await startServer({
      cwd: dir,
      env: {
        ...env,
        PORT: port,
        JWT_PRIVATE_KEY: tesseraKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
        // A rotation by the CLI is seen within a second (60 s by default).
        KEYS_RELOAD_INTERVAL_SECONDS: '1',
      },
    })
    assert.equal(tessera.url, `http://127.0.0.1:${port}`)
    flask = await startFlask({ TESSERA_URL: tessera.url, TESSERA_ALGORITHM: 'EdDSA' })

    const registered = await call(tessera.url, 'POST', '/auth/register', {
      body: { username: 'ada', password: 'correct horse battery', firstName: 'Ada', lastName: 'Lovelace' },
    })
    assert.equal(registered.status, 201, JSON.stringify(registered.body))
    const token = await logIn('ada', 'correct horse battery')
    user = { token, sub: String(decodePart(token, 1).sub) }
    const created = await runTessera(['user', 'create', 'root', '--admin', '--password-stdin'], {
      cwd: dir,
      env,
      input: 'admin password 1\n',
    })
    assert.equal(created.code, 0, created.stderr)
    admin = { token: await logIn('root', 'admin password 1') }
  })

  after(async () => {
    flask?.child.kill('SIGTERM')
    await tessera?.stop()
    await databases.dropAll()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it("answers a user's access token with its subject, and refuses the admin route to it (403)", async () => {
    const me = await get('/me', user.token)
    assert.equal(me.status, 200, JSON.stringify(me.body))
    assert.deepEqual(me.body, { sub: user.sub, username: 'ada', roles: ['user'] })
    const refused = await get('/admin', user.token)
    assert.equal(refused.status, 403)
    assert.equal(refused.headers.get('content-type'), 'application/problem+json')
    assert.deepEqual(refused.body, { title: 'This needs the admin role', status: 403 })
  })

  it('lets an admin (made by `tessera user create --admin`) in', async () => {
    const answer = await get('/admin', admin.token)
    assert.equal(answer.status, 200, JSON.stringify(answer.body))
    assert.equal(answer.body.admin, 'root')
  })

  it('fetches the new key when Tessera rotates (`tessera keys rotate`), and still takes the old tokens', async () => {
    const oldKid = decodePart(user.token, 0).kid
    // The Flask app holds the JWKS of before the rotation (and this test needs none of those above it).
    assert.equal((await get('/me', user.token)).status, 200)
    const rotated = await runTessera(['keys', 'rotate'], { cwd: dir, env })
    assert.equal(rotated.code, 0, rotated.stderr)
    let token = await logIn('ada', 'correct horse battery')
    for (let tries = 0; decodePart(token, 0).kid === oldKid && tries < 50; tries++) {
      await sleep(200)
      token = await logIn('ada', 'correct horse battery')
    }
    assert.notEqual(decodePart(token, 0).kid, oldKid, 'Tessera signs with the new key')
    assert.equal(
      (await get('/me', token)).status,
      200,
      'the Flask app fetched the JWKS again for the new kid',
    )
    assert.equal((await get('/me', user.token)).status, 200, 'the retired key still verifies')
  })

  it("accepts a token signed here with Tessera's key and nothing changed (what makes the refusals below meaningful)", async () => {
    assert.equal((await get('/me', await sign({}))).status, 200)
  })

  it('refuses (401, WWW-Authenticate) a missing token, an expired one, another key, aud, iss, typ, none and HS256', async () => {
    const now = Math.floor(Date.now() / 1000)
    const [header, payload] = user.token.split('.')
    const otherKey = generateKeyPairSync('ed25519').privateKey
    const publicPem = tesseraKey.publicKey.export({ format: 'pem', type: 'spki' })
    const hsHeader = encodePart({ ...decodePart(user.token, 0), alg: 'HS256' })
    const hs256 = createHmac('sha256', publicPem).update(`${hsHeader}.${payload}`).digest('base64url')
    const refused: Record<string, string> = {
      expired: await sign({ claims: { iat: now - 1000, exp: now - 100 } }),
      "signed by another key, with Tessera's kid": await sign({ claims: { roles: ['admin'] } }, otherKey),
      'signed by another key, with its own kid': await sign({ header: { kid: 'another' } }, otherKey),
      'for another audience': await sign({ claims: { aud: 'another-service' } }),
      'from another issuer': await sign({ claims: { iss: 'https://auth.example.com' } }),
      'typ JWT': await sign({ header: { typ: 'JWT' } }),
      'without sub': await sign({ claims: { sub: undefined } }),
      'alg none': `${encodePart({ ...decodePart(user.token, 0), alg: 'none' })}.${payload}.`,
      'HS256 with the public key as the secret': `${hsHeader}.${payload}.${hs256}`,
      'with a changed payload': `${header}.${encodePart({ ...decodePart(user.token, 1), roles: ['admin'] })}.${user.token.split('.')[2]}`,
    }
    const missing = await get('/me')
    assert.equal(missing.status, 401)
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer')
    for (const [what, token] of Object.entries(refused)) {
      for (const path of ['/me', '/admin']) {
        const answer = await get(path, token)
        assert.equal(answer.status, 401, `${what} on ${path}: ${JSON.stringify(answer.body)}`)
        assert.equal(answer.headers.get('www-authenticate'), 'Bearer error="invalid_token"', what)
        assert.equal(answer.headers.get('content-type'), 'application/problem+json', what)
      }
    }
    assert.equal((await get('/me', refused.expired)).body.title, 'The access token has expired')
  })
})
