// GET /metrics (issue 17, point 1): off unless METRICS_PORT or METRICS_TOKEN; behind the token on the API port;
// without it on a port of its own, for a cluster's workers together; the counters an operator alerts on move
// by what happened; and the alert rules in deploy/prometheus name only metrics the server exports.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem } from '../helpers/fixtures.ts'
import { call } from '../helpers/http-client.ts'
import { freePort } from '../helpers/outages.ts'
import { startServer } from '../helpers/server-process.ts'
import { registerAndLogIn } from '../helpers/sign-up.ts'

const TOKEN = 'mK3v9QzR7pL2xW8nT4bY6cJ1hF5dG0sA'
const PASSWORD = 'correct horse battery'

type Sample = { name: string; labels: Record<string, string>; value: number }

/** The samples of a Prometheus text exposition; throws on any line that is not a comment or a sample. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(match, `not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g)) {
      labels[pair[1] as string] = pair[2] as string
    }
    // Prometheus reads floats as Go does: `NaN` in any case (prom-client writes `Nan`), `+Inf`, `-Inf`.
    const value = /^nan$/i.test(match[3] as string)
      ? Number.NaN
      : Number(match[3]?.replace(/Inf$/, 'Infinity'))
    assert.ok(!Number.isNaN(value) || /^nan$/i.test(match[3] as string), `not a number: ${line}`)
    samples.push({ name: match[1] as string, labels, value })
  }
  return samples
}

/** The value of the sample with that name and at least those labels; 0 when there is none yet. */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.find(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  )
  return found?.value ?? 0
}

describe('metrics', () => {
  it('are not served unless METRICS_PORT or METRICS_TOKEN is set: /metrics is 404', async () => {
    const { app, close } = await buildTestApp()
    try {
      const response = await app.inject({ method: 'GET', url: '/metrics' })
      assertProblem(response, 404, 'not_found')
    } finally {
      await close()
    }
  })

  describe('on the API port, behind METRICS_TOKEN', () => {
    let test: TestApp
    const scrape = async () => {
      const response = await test.app.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${TOKEN}` },
      })
      assert.equal(response.statusCode, 200, response.body)
      assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/)
      return parseExposition(response.body)
    }
    const post = async (url: string, payload: Record<string, string>) => {
      const response = await test.app.inject({ method: 'POST', url, payload })
      return { status: response.statusCode, body: response.json() as unknown }
    }

    before(async () => {
      test = await buildTestApp({
        env: {
          METRICS_TOKEN: TOKEN,
          REFRESH_REUSE_WINDOW_SECONDS: '0',
          RATE_LIMIT_REGISTER_PER_USERNAME: '1',
        },
      })
    })
    after(() => test.close())

    it('refuses a scrape without the token, or with a wrong one: 401 problem+json', async () => {
      const without = await test.app.inject({ method: 'GET', url: '/metrics' })
      assertProblem(without, 401, 'invalid_token')
      const wrong = await test.app.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}x` },
      })
      assertProblem(wrong, 401, 'invalid_token')
      assert.ok(!wrong.body.includes(TOKEN.slice(0, 8)), 'the token is never echoed')
    })

    it('is not in the OpenAPI document', async () => {
      const document = (await test.app.inject({ method: 'GET', url: '/openapi.json' })).json()
      assert.equal(document.paths['/metrics'], undefined)
    })

    it('counts logins, refreshes, reuse and rate-limit refusals by what happened', async () => {
      const start = await scrape()
      const ada = await registerAndLogIn(post, { username: 'ada', password: PASSWORD })
      assert.equal((await post('/auth/login', { username: 'ada', password: 'wrong password!' })).status, 401)
      assert.equal((await post('/auth/refresh', { refresh_token: ada.refreshToken })).status, 200)
      // The spent token again, with no reuse window: reuse, and the session is revoked.
      assert.equal((await post('/auth/refresh', { refresh_token: ada.refreshToken })).status, 401)
      // RATE_LIMIT_REGISTER_PER_USERNAME is 1: the second attempt at one name is refused.
      const grace = { username: 'grace', password: PASSWORD, firstName: 'G', lastName: 'H' }
      assert.equal((await post('/auth/register', grace)).status, 201)
      assert.equal((await post('/auth/register', grace)).status, 429)
      const end = await scrape()

      const moved = (name: string, labels: Record<string, string> = {}) =>
        sampleValue(end, name, labels) - sampleValue(start, name, labels)
      assert.equal(moved('tessera_logins_total', { outcome: 'succeeded' }), 1)
      assert.equal(moved('tessera_logins_total', { outcome: 'failed', reason: 'wrong_password' }), 1)
      assert.equal(moved('tessera_refreshes_total', { outcome: 'succeeded' }), 1)
      assert.equal(moved('tessera_refreshes_total', { outcome: 'refresh_token_reused' }), 1)
      assert.equal(moved('tessera_security_events_total', { type: 'session.reuse_detected' }), 1)
      assert.equal(moved('tessera_rate_limit_refusals_total', { limit: 'registerPerUsername' }), 1)
      // Requests by route template and status, never by the path asked for.
      const login = { route: '/auth/login', method: 'POST' }
      assert.equal(moved('tessera_http_request_duration_seconds_count', { ...login, status: '200' }), 1)
      assert.equal(moved('tessera_http_request_duration_seconds_count', { ...login, status: '401' }), 1)
    })

    it('labels requests by route template, and those no route matched as one', async () => {
      const before = await scrape()
      await test.app.inject({ method: 'GET', url: '/users/00000000-0000-4000-8000-000000000000' })
      await test.app.inject({ method: 'GET', url: '/no/such/path/1' })
      await test.app.inject({ method: 'GET', url: '/no/such/path/2' })
      const samples = await scrape()
      const count = 'tessera_http_request_duration_seconds_count'
      assert.equal(
        sampleValue(samples, count, { route: '/users/:id', status: '401' }) -
          sampleValue(before, count, { route: '/users/:id', status: '401' }),
        1,
      )
      assert.equal(
        sampleValue(samples, count, { route: 'unmatched', status: '404' }) -
          sampleValue(before, count, { route: 'unmatched', status: '404' }),
        2,
      )
      assert.ok(!samples.some((sample) => sample.labels.route?.startsWith('/no/such')))
    })

    it('labels the methods no route serves as one, so that a client cannot add series with them', async () => {
      for (const method of ['PROPFIND', 'MKCOL', 'LOCK', 'PURGE', 'M-SEARCH'] as const) {
        await test.app.inject({ method: method as 'GET', url: '/auth/login' })
        await test.app.inject({ method: method as 'GET', url: '/x' })
      }
      const samples = await scrape()
      const methods = new Set(
        samples.filter((sample) => sample.labels.route === 'unmatched').map((sample) => sample.labels.method),
      )
      assert.ok(methods.has('other'), [...methods].join())
      for (const method of methods)
        assert.match(String(method), /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|other)$/)
    })

    it('takes the bearer scheme in any case, as HTTP has it', async () => {
      const response = await test.app.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `bearer ${TOKEN}` },
      })
      assert.equal(response.statusCode, 200)
    })

    it('exports the metrics the alert rules name, and the rules pass `promtool check rules`', async () => {
      const rules = join(import.meta.dirname, '../../deploy/prometheus/tessera-alerts.yml')
      // Debian's prometheus package; .ci/run installs it when promtool is missing.
      const output = execFileSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' })
      assert.match(output, /SUCCESS/)
      const exported = new Set((await scrape()).map((sample) => sample.name))
      const named = new Set(readFileSync(rules, 'utf8').match(/\btessera_[a-z_]+/g))
      assert.ok(named.size >= 5)
      for (const name of named) assert.ok(exported.has(name), `${name} is named by an alert but not exported`)
      for (const name of ['tessera_db_pool_connections_in_use', 'tessera_signing_keys_reload_age_seconds']) {
        assert.ok(exported.has(name), name)
      }
      assert.ok(exported.has('process_cpu_user_seconds_total'), 'process metrics')
    })
  })

  describe('on METRICS_PORT', () => {
    const dirs: string[] = []
    after(() => {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    })
    const freshDir = () => {
      const dir = mkdtempSync(join(tmpdir(), 'tessera-metrics-'))
      dirs.push(dir)
      return dir
    }

    it('serves them without a token, and the API port does not', async () => {
      const port = await freePort()
      const server = await startServer({
        cwd: freshDir(),
        env: { DATABASE_URL: ':memory:', METRICS_PORT: String(port) },
      })
      try {
        await call(server.url, 'GET', '/health')
        const response = await fetch(`http://127.0.0.1:${port}/metrics`)
        assert.equal(response.status, 200)
        const samples = parseExposition(await response.text())
        assert.equal(
          sampleValue(samples, 'tessera_http_request_duration_seconds_count', {
            route: '/health',
            status: '200',
          }),
          1,
        )
        assert.equal((await call(server.url, 'GET', '/metrics')).status, 404)
        assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404)
      } finally {
        assert.equal(await server.stop(), 0)
      }
    })

    it("with several workers, adds up every worker's counts", async () => {
      const port = await freePort()
      const server = await startServer({
        cwd: freshDir(),
        env: { DATABASE_URL: 'tessera.db', METRICS_PORT: String(port) },
        serveArgs: ['--workers', '2'],
      })
      try {
        for (let i = 0; i < 6; i++) {
          // A fresh connection each time, so that both workers get some.
          const response = await fetch(`${server.url}/health`, { headers: { connection: 'close' } })
          assert.equal(response.status, 200)
        }
        const samples = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())
        assert.equal(
          sampleValue(samples, 'tessera_http_request_duration_seconds_count', {
            route: '/health',
            status: '200',
          }),
          6,
        )
      } finally {
        assert.equal(await server.stop(), 0)
      }
    })

    it('refuses METRICS_TOKEN with several workers, in one line', async () => {
      await assert.rejects(
        startServer({
          cwd: freshDir(),
          env: { DATABASE_URL: 'tessera.db', METRICS_TOKEN: TOKEN },
          serveArgs: ['--workers', '2'],
        }),
        (error: Error) => {
          assert.match(error.message, /exited with 1/)
          assert.match(error.message, /METRICS_TOKEN serves the metrics of one process/)
          assert.ok(!error.message.includes(TOKEN), 'the token is never printed')
          return true
        },
      )
    })
  })
})
