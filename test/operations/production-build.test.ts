// The production build (scripts/build.ts) as `npm start` and the systemd unit run it: made from this checkout's
// sources, started through bin/start.js, and driven through what a bundler can break: a lazily loaded chunk
// (the TOTP QR code), a native addon (argon2), files read from beside a package (the API reference's assets) or
// from the repository (the account page). Every other test runs the sources. Issue 19.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { call, signUp } from '../helpers/http-client.ts'
import { freePort } from '../helpers/outages.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const METRICS_TOKEN = 'a-metrics-token-of-32-characters-at-least'
/** `npm start`'s command, in words: `node [V8 flags] bin/start.js`. */
const NPM_START = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
).scripts.start.split(/\s+/)

describe('the production build', { timeout: 120_000 }, () => {
  let dir: string
  let server: ServerProcess

  before(async () => {
    // Built here, whatever dist/ held: a build that fails fails this test with esbuild's message.
    await promisify(execFile)(process.execPath, [join(ROOT, 'scripts/build.ts')], { cwd: ROOT })
    dir = mkdtempSync(join(tmpdir(), 'tessera-build-'))
    // Metrics on: prom-client is loaded by a dynamic import(), which a bundler can get wrong (scripts/build.ts).
    const env = { METRICS_TOKEN: METRICS_TOKEN }
    server = await startServer({
      cwd: dir,
      env,
      server: join(ROOT, 'bin/start.js'),
      nodeOptions: NPM_START.slice(1, -1),
    })
  })

  after(async () => {
    await server?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('is what bin/start.js runs, not the sources', () => {
    assert.doesNotMatch(server.output(), /running the sources/)
  })

  it('is started by the systemd unit as npm start starts it, with the same node options', () => {
    const unit = readFileSync(join(ROOT, 'deploy/tessera.service'), 'utf8')
    const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1]?.split(/\s+/) ?? []
    const asNpmStarts = execStart.map((word) =>
      word.replace('/opt/tessera/node_modules/.bin/node', 'node').replace('/opt/tessera/', ''),
    )
    assert.deepEqual(asNpmStarts, NPM_START)
  })

  it('answers /health and /ready, registers, logs in (argon2) and serves /auth/me', async () => {
    assert.equal((await fetch(`${server.url}/health`)).status, 200)
    assert.equal((await fetch(`${server.url}/ready`)).status, 200)
    const { username, access } = await signUp(server.url)
    const me = await call(server.url, 'GET', '/auth/me', { token: access })
    assert.equal(me.status, 200)
    assert.equal(me.body.username, username)
  })

  it('starts a TOTP enrolment, whose QR code comes from a chunk loaded on first use', async () => {
    const { access } = await signUp(server.url)
    const enrolment = await call(server.url, 'POST', '/auth/mfa/totp', { token: access })
    assert.equal(enrolment.status, 200)
    assert.match(enrolment.body.qr_svg, /^<svg/)
  })

  it('serves the API reference with its assets, the OpenAPI document and the account page', async () => {
    for (const path of ['/docs/', '/docs/static/swagger-ui.css', '/openapi.json', '/account/']) {
      assert.equal((await fetch(`${server.url}${path}`)).status, 200, path)
    }
  })

  it('serves its metrics (prom-client)', async () => {
    const metrics = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    })
    assert.equal(metrics.status, 200)
    assert.match(await metrics.text(), /^# HELP /m)
  })

  it('stops cleanly on SIGTERM', async () => {
    assert.equal(await server.stop(), 0)
  })

  it('runs every worker of a cluster from the build, with their metrics added up on METRICS_PORT', async () => {
    const port = await freePort()
    const cluster = await startServer({
      cwd: dir,
      env: { DATABASE_URL: 'cluster.db', WORKERS: '2', METRICS_PORT: String(port) },
      server: join(ROOT, 'bin/start.js'),
      nodeOptions: NPM_START.slice(1, -1),
    })
    try {
      for (let i = 0; i < 4; i++) {
        // A fresh connection each time, so that both workers get some.
        const response = await fetch(`${cluster.url}/health`, { headers: { connection: 'close' } })
        assert.equal(response.status, 200)
      }
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      assert.match(metrics, /^tessera_http_request_duration_seconds_count\{[^}]*route="\/health"[^}]*\} 4$/m)
      // The primary decided once for every process (bin/start.js): no worker fell back to the sources.
      assert.doesNotMatch(cluster.output(), /running the sources/)
    } finally {
      assert.equal(await cluster.stop(), 0)
    }
  })
})
