// Issue 17, point 4: rotating JWT_SECRET and KEY_ENCRYPTION_SECRET without logging anyone out, by the steps
// docs/operations.md gives (Rotating secrets), on real server processes and the real `tessera` command.
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { retirementGraceSeconds } from '../../src/keys/key-store.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { type CommandRun, runTessera } from '../helpers/cli-process.ts'
import { call, signUp, TEST_PASSWORD } from '../helpers/http-client.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import { registerAndLogIn } from '../helpers/sign-up.ts'
import { sharedTestDatabases, testRedisEnv } from '../helpers/test-database.ts'
import { base32Decode, totp } from '../helpers/totp.ts'

const newSecret = () => randomBytes(48).toString('base64url')

const dir = mkdtempSync(join(tmpdir(), 'tessera-secret-rotation-'))
const databases = sharedTestDatabases()
const servers: ServerProcess[] = []
after(async () => {
  for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL')
  await databases.dropAll()
  rmSync(dir, { recursive: true, force: true })
})

async function baseEnv(name: string): Promise<Record<string, string>> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: await databases.url(join(dir, `${name}.db`)),
    PUBLIC_URL: 'http://tessera.test',
    ...testRedisEnv(),
  }
}

/** Runs the server until it is stopped (by `use` returning or throwing). */
async function withServer<T>(env: Record<string, string>, use: (server: ServerProcess) => Promise<T>) {
  const server = await startServer({ env })
  servers.push(server)
  try {
    return await use(server)
  } finally {
    assert.equal(await server.stop(), 0)
  }
}

/** The server's log, once it holds a line matching `pattern` (logged just after the start line). */
async function logged(server: ServerProcess, pattern: RegExp): Promise<string> {
  for (let tries = 0; tries < 50 && !pattern.test(server.output()); tries++) await sleep(100)
  assert.match(server.output(), pattern)
  return server.output()
}

/** `tessera ...args` as a process that is expected to end. */
const run = (args: string[], env: Record<string, string>) =>
  runTessera(args, {
    cwd: dir,
    env: { LOG_LEVEL: 'info', PORT: '0', ...env },
    // A server expected to refuse to start that starts anyway is stopped, and fails the test by its code.
    timeoutMs: 30_000,
  })

/** A failure as the operator sees it: exit 1, one line on stderr, no stack trace. */
function assertOneLineFailure(result: CommandRun, pattern: RegExp) {
  assert.equal(result.code, 1, result.stdout + result.stderr)
  const lines = result.stderr.trim().split('\n')
  assert.equal(lines.length, 1, result.stderr)
  assert.match(lines[0] ?? '', pattern)
  assert.doesNotMatch(result.stderr, /\bat .*\.(ts|js):\d+/)
}

/** Whether the HS256 token's signature is the HMAC of its content under `secret`. */
function signedWith(token: string, secret: string): boolean {
  const [header, payload, signature] = token.split('.')
  return createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url') === signature
}

const me = (url: string, token: string) => call(url, 'GET', '/auth/me', { token })
const refresh = (url: string, refreshToken: string) =>
  call(url, 'POST', '/auth/refresh', { body: { refresh_token: refreshToken } })

describe('rotating JWT_SECRET with JWT_SECRET_PREVIOUS', () => {
  it('keeps tokens made under the old secret working, signs only with the new, and refuses the old once it is removed', async () => {
    const env = await baseEnv('jwt')
    const OLD = newSecret()
    const NEW = newSecret()
    const before = await withServer({ ...env, JWT_SECRET: OLD }, (server) => signUp(server.url))
    assert.ok(signedWith(before.access, OLD))

    const renewed = await withServer(
      { ...env, JWT_SECRET: NEW, JWT_SECRET_PREVIOUS: OLD },
      async (server) => {
        const log = await logged(
          server,
          /JWT_SECRET_PREVIOUS is set: access tokens signed with it .*are accepted for \d+ s from this start/,
        )
        assert.ok(!log.includes(OLD) && !log.includes(NEW), 'no secret in the log')
        const answer = await me(server.url, before.access)
        assert.equal(answer.status, 200, JSON.stringify(answer.body))
        assert.equal(answer.body.username, before.username)
        const refreshed = await refresh(server.url, before.refresh)
        assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body))
        const login = await call(server.url, 'POST', '/auth/login', {
          body: { username: before.username, password: TEST_PASSWORD },
        })
        assert.equal(login.status, 200)
        for (const token of [refreshed.body.access_token, login.body.access_token]) {
          assert.ok(signedWith(token, NEW), 'signed with JWT_SECRET')
          assert.ok(!signedWith(token, OLD), 'never with JWT_SECRET_PREVIOUS')
        }
        return refreshed.body as { access_token: string; refresh_token: string }
      },
    )

    await withServer({ ...env, JWT_SECRET: NEW }, async (server) => {
      assert.equal((await me(server.url, renewed.access_token)).status, 200)
      assert.equal((await refresh(server.url, renewed.refresh_token)).status, 200)
      const old = await me(server.url, before.access)
      assert.equal(old.status, 401)
      assert.equal(old.body.code, 'invalid_token')
    })
  })

  it('accepts the previous secret for an access token’s lifetime and leeway from the start, then refuses it, though it is still set', async () => {
    const env = await baseEnv('jwt-expiry')
    const OLD = newSecret()
    const NEW = newSecret()
    const clock = createFixedClock()
    const rotated = await buildTestApp({
      env: { ...env, JWT_SECRET: NEW, JWT_SECRET_PREVIOUS: OLD },
      overrides: { clock },
    })
    // An instance not yet switched, still signing with the old secret, as during a rolling restart.
    const notYet = await buildTestApp({ env: { ...env, JWT_SECRET: OLD }, overrides: { clock } })
    try {
      const grace = retirementGraceSeconds(rotated.deps.config)
      const me = (test: TestApp, token: string) =>
        test.app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
      const post = async (path: string, body: Record<string, string>) => {
        const response = await notYet.app.inject({ method: 'POST', url: path, payload: body })
        return { status: response.statusCode, body: response.json() }
      }
      await registerAndLogIn(post, { username: 'ada', password: TEST_PASSWORD })
      const fresh = async () => (await post('/auth/login', { username: 'ada', password: TEST_PASSWORD })).body
      assert.equal((await me(rotated, (await fresh()).access_token)).statusCode, 200)

      // Just before the end of the grace, a token the old secret signed a moment ago still verifies...
      clock.advance((grace - 60) * 1000)
      const late = (await fresh()).access_token
      assert.equal((await me(rotated, late)).statusCode, 200)
      // ...and just after it, the same token, unexpired, is refused: the previous secret verifies no more.
      clock.advance(61 * 1000)
      const refused = await me(rotated, late)
      assert.equal(refused.statusCode, 401)
      assert.equal(refused.json().code, 'invalid_token')
      assert.equal((await me(notYet, late)).statusCode, 200, 'the token itself has not expired')
    } finally {
      await rotated.close()
      await notYet.close()
    }
  })

  it('refuses to start with JWT_SECRET_PREVIOUS equal to JWT_SECRET, too short, or with an asymmetric algorithm', async () => {
    const env = await baseEnv('jwt-refusals')
    // 48 bytes: enough for HS256 and HS384, not for HS512.
    const secret = randomBytes(36).toString('base64url')
    const runs = await Promise.all([
      run(['serve'], { ...env, JWT_SECRET: secret, JWT_SECRET_PREVIOUS: secret }),
      run(['serve'], {
        ...env,
        JWT_ALGORITHM: 'HS512',
        JWT_SECRET: newSecret(),
        JWT_SECRET_PREVIOUS: secret,
      }),
      run(['serve'], { ...env, JWT_ALGORITHM: 'EdDSA', JWT_SECRET_PREVIOUS: secret }),
    ])
    const [same, short, asymmetric] = runs as [CommandRun, CommandRun, CommandRun]
    for (const result of runs) {
      assert.equal(result.code, 1, result.stdout + result.stderr)
      assert.ok(!(result.stdout + result.stderr).includes(secret), 'the secret is never echoed')
      assert.doesNotMatch(result.stderr, /\bat .*\.(ts|js):\d+/)
    }
    assert.match(same.stderr, /JWT_SECRET_PREVIOUS is the same as JWT_SECRET/)
    assert.match(short.stderr, /JWT_SECRET_PREVIOUS must be at least 64 bytes \(UTF-8\) for HS512/)
    assert.match(asymmetric.stderr, /JWT_SECRET_PREVIOUS is for HS256\/384\/512; JWT_ALGORITHM is EdDSA/)
  })
})

describe('rotating KEY_ENCRYPTION_SECRET with `tessera keys reseal`', () => {
  it('re-seals signing keys, server secrets and TOTP secrets: a server with only the new secret signs, verifies old tokens, refreshes old sessions and accepts TOTP codes', async () => {
    const env = await baseEnv('reseal')
    const OLD = newSecret()
    const NEW = newSecret()

    // Before: a generated signing key, the server secrets and an enrolled TOTP factor, all sealed under OLD.
    const before = await withServer({ ...env, KEY_ENCRYPTION_SECRET: OLD }, async (server) => {
      const user = await signUp(server.url)
      const started = await call(server.url, 'POST', '/auth/mfa/totp', { token: user.access })
      assert.equal(started.status, 200, JSON.stringify(started.body))
      const secret = base32Decode(started.body.secret)
      const confirmed = await call(server.url, 'POST', '/auth/mfa/totp/confirm', {
        token: user.access,
        body: { code: totp(secret, Date.now() / 1000) },
      })
      assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body))
      return { ...user, secret }
    })

    // One instance, as docs/operations.md says: restart with both secrets, reseal, restart with the new only.
    const both = { ...env, KEY_ENCRYPTION_SECRET: NEW, KEY_ENCRYPTION_SECRET_PREVIOUS: OLD }
    await withServer(both, async (server) => {
      await logged(server, /KEY_ENCRYPTION_SECRET_PREVIOUS is set/)
      assert.equal((await me(server.url, before.access)).status, 200)

      // A wrong previous secret: one line, and nothing changed (the run below still finds everything to do).
      const wrong = await run(['keys', 'reseal'], { ...both, KEY_ENCRYPTION_SECRET_PREVIOUS: newSecret() })
      assertOneLineFailure(
        wrong,
        /^tessera: .* cannot be decrypted with KEY_ENCRYPTION_SECRET nor KEY_ENCRYPTION_SECRET_PREVIOUS; nothing was changed$/,
      )
      assert.equal(wrong.stdout, '')

      // While the server runs.
      const first = await run(['keys', 'reseal'], both)
      assert.equal(first.code, 0, first.stderr)
      assert.match(first.stdout, /^signing keys: 1 resealed, 0 already under KEY_ENCRYPTION_SECRET$/m)
      assert.match(
        first.stdout,
        /^server secrets: [1-9]\d* resealed, 0 already under KEY_ENCRYPTION_SECRET$/m,
      )
      assert.match(first.stdout, /^TOTP secrets: 1 resealed, 0 already under KEY_ENCRYPTION_SECRET$/m)

      const second = await run(['keys', 'reseal'], both)
      assert.equal(second.code, 0, second.stderr)
      for (const what of ['signing keys', 'server secrets', 'TOTP secrets'])
        assert.match(
          second.stdout,
          new RegExp(`^${what}: 0 resealed, [1-9]\\d* already under KEY_ENCRYPTION_SECRET$`, 'm'),
        )
    })

    await withServer({ ...env, KEY_ENCRYPTION_SECRET: NEW }, async (server) => {
      assert.equal((await me(server.url, before.access)).status, 200, 'the stored key still verifies')
      const refreshed = await refresh(server.url, before.refresh)
      assert.equal(refreshed.status, 200, 'the refresh-token secret still opens')
      assert.equal((await me(server.url, refreshed.body.access_token)).status, 200, 'the stored key signs')
      const first = await call(server.url, 'POST', '/auth/login', {
        body: { username: before.username, password: TEST_PASSWORD },
      })
      assert.equal(first.body.mfa_required, true)
      // The step after the one the enrolment used: a code is accepted once, and one step of drift is allowed.
      const second = await call(server.url, 'POST', '/auth/login/mfa', {
        body: { mfa_token: first.body.mfa_token, code: totp(before.secret, Date.now() / 1000 + 30) },
      })
      assert.equal(second.status, 200, JSON.stringify(second.body))
    })

    const stale = await run(['serve'], { ...env, KEY_ENCRYPTION_SECRET: OLD })
    assertOneLineFailure(stale, /cannot be decrypted with this KEY_ENCRYPTION_SECRET/)
  })
})
