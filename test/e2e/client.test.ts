// Issue 16, point 3: @tessera/client (client/), against a real server over HTTP. Its types are made from the
// OpenAPI document and must be current; its build runs in Node; it signs in (with the second factor), refreshes
// once for concurrent calls whose access token expired, and signs out, in body mode and in cookie mode.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { buildClient } from '../../client/build.ts'
import { generateSchema, SCHEMA_FILE } from '../../client/generate.ts'
import { createTesseraClient, memoryStorage, TesseraError } from '../../client/src/index.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { uniqueUsername } from '../helpers/fixtures.ts'
import { base32Decode, totp } from '../helpers/totp.ts'

const PASSWORD = 'a client-side passphrase'

/** A fetch that counts the requests to each path. */
function countingFetch() {
  const calls = new Map<string, number>()
  const fetch: typeof globalThis.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    calls.set(url.pathname, (calls.get(url.pathname) ?? 0) + 1)
    return globalThis.fetch(input, init)
  }
  return { fetch, calls }
}

/** A fetch that keeps cookies as a browser would (by name, for this one server), to test the cookie mode. */
function cookieJarFetch() {
  const jar = new Map<string, string>()
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const request = new Request(input, init)
    if (jar.size > 0)
      request.headers.set('cookie', [...jar].map(([name, value]) => `${name}=${value}`).join('; '))
    const response = await globalThis.fetch(request)
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';')
      const [name = '', value = ''] = pair.split('=')
      if (value === '' || /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name)
      else jar.set(name, value)
    }
    return response
  }
  return { fetch, jar }
}

describe('@tessera/client', () => {
  let t: TestApp
  let clock: ReturnType<typeof createFixedClock>
  let baseUrl: string
  before(async () => {
    clock = createFixedClock()
    t = await buildTestApp({ overrides: { clock }, env: { PUBLIC_URL: 'http://127.0.0.1' } })
    baseUrl = await t.app.listen({ port: 0, host: '127.0.0.1' })
  })
  after(() => t.close())

  const signUp = async (client: ReturnType<typeof createTesseraClient>) => {
    const username = uniqueUsername('client')
    await client.register({ username, password: PASSWORD, firstName: 'Ada', lastName: 'Lovelace' })
    return username
  }

  it('has the types of the OpenAPI document as it is (npm run client:types)', async () => {
    assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), await generateSchema(), 'client/src/schema.ts is stale')
  })

  it('signs up, signs in, reads and signs out in body mode, the refresh token in the storage given', async () => {
    const storage = memoryStorage()
    const client = createTesseraClient({ baseUrl, storage })
    const username = await signUp(client)
    assert.deepEqual(await client.login(username, PASSWORD), { status: 'signed_in' })
    assert.ok(await storage.get('refresh_token'))
    assert.ok(await storage.get('device_token'))
    assert.equal((await client.me()).username, username)
    assert.equal((await client.sessions()).length, 1)
    const activity = await client.activity({ limit: 1 })
    assert.equal(activity.events.length, 1)
    assert.ok(activity.nextCursor, 'more than one event: a next page')
    const next = await client.activity({ cursor: activity.nextCursor as string })
    assert.ok([...activity.events, ...next.events].some((event) => event.type === 'login.succeeded'))
    await client.logout()
    assert.equal(await storage.get('refresh_token'), undefined)
    await assert.rejects(
      client.me(),
      (error: unknown) => error instanceof TesseraError && error.status === 401,
    )
    await assert.rejects(client.login(username, 'not the password'), (error: unknown) => {
      return error instanceof TesseraError && error.code === 'invalid_credentials'
    })
  })

  it('signs in with the second factor: the login says so, and a code completes it', async () => {
    const client = createTesseraClient({ baseUrl })
    const username = await signUp(client)
    await client.login(username, PASSWORD)
    const started = await client.api.POST('/auth/mfa/totp')
    const secret = base32Decode(started.data?.secret ?? '')
    const now = () => Math.floor(clock.now() / 1000)
    const confirmed = await client.api.POST('/auth/mfa/totp/confirm', { body: { code: totp(secret, now()) } })
    assert.equal(confirmed.data?.recovery_codes.length, 10)
    clock.advance(30_000)

    const other = createTesseraClient({ baseUrl })
    const login = await other.login(username, PASSWORD)
    assert.equal(login.status, 'mfa_required')
    if (login.status !== 'mfa_required') return
    assert.deepEqual(await login.complete({ code: totp(secret, now()) }), { status: 'signed_in' })
    assert.equal((await other.me()).username, username)
  })

  it('refreshes once for concurrent calls that meet an expired access token, and sends each again once', async () => {
    const { fetch, calls } = countingFetch()
    const client = createTesseraClient({ baseUrl, fetch })
    await client.login(await signUp(client), PASSWORD)
    const before = client.accessToken
    clock.advance(16 * 60_000)
    const users = await Promise.all(Array.from({ length: 10 }, () => client.me()))
    assert.equal(users.length, 10)
    assert.equal(calls.get('/auth/refresh'), 1, 'one refresh for all ten')
    assert.equal(calls.get('/auth/me'), 20, 'each sent twice: once expired, once refreshed')
    assert.notEqual(client.accessToken, before)
  })

  it('signs out after the access token expired: the session ends on the server', async () => {
    for (const mode of ['body', 'cookie'] as const) {
      const { fetch } = cookieJarFetch()
      const client = createTesseraClient({ baseUrl, mode, fetch })
      const username = await signUp(client)
      await client.login(username, PASSWORD)
      const watcher = createTesseraClient({ baseUrl })
      await watcher.login(username, PASSWORD)
      assert.equal((await watcher.sessions()).length, 2)
      clock.advance(16 * 60_000)
      await client.logout()
      assert.equal((await watcher.sessions()).length, 1, `${mode} mode: the session ended`)
      assert.equal(await client.refresh(), false)
    }
  })

  it('works in cookie mode: the refresh token only ever in an HttpOnly cookie, refreshed with the CSRF header', async () => {
    const { fetch, jar } = cookieJarFetch()
    const storage = memoryStorage()
    const client = createTesseraClient({ baseUrl, mode: 'cookie', fetch, storage })
    await client.login(await signUp(client), PASSWORD)
    assert.ok(jar.has('tessera_refresh_token'), 'set as a cookie')
    assert.equal(await storage.get('refresh_token'), undefined, 'never seen by the client')
    clock.advance(16 * 60_000)
    assert.ok((await client.me()).username)
    assert.equal(await client.refresh(), true)
    await client.logout()
    assert.ok(!jar.has('tessera_refresh_token'), 'cleared by the logout')
    assert.equal(await client.refresh(), false)
  })

  it('builds to one ES module that runs in Node (npm run client:build)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-client-'))
    try {
      const file = join(dir, 'index.js')
      await buildClient(file)
      const built = (await import(file)) as typeof import('../../client/src/index.ts')
      const client = built.createTesseraClient({ baseUrl })
      const username = uniqueUsername('bundle')
      await client.register({ username, password: PASSWORD, firstName: 'Ada', lastName: 'Lovelace' })
      await client.login(username, PASSWORD)
      assert.equal((await client.me()).username, username)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
