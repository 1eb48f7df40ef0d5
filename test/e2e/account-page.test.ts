// Issue 16, point 5: the account page's files, as the server serves them (the browser tests in test/browser/
// drive the page itself): under a strict Content-Security-Policy, with the typed client built from the current
// sources, and only where ACCOUNT_PAGE_ENABLED (by default: outside production).
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ACCOUNT_PAGE_CLIENT, buildClient } from '../../client/build.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'

describe('GET /account/', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('serves the page and its files under a CSP that allows nothing inline and nothing from elsewhere', async () => {
    const redirect = await t.app.inject({ method: 'GET', url: '/account' })
    assert.equal(redirect.statusCode, 301)
    const page = await t.app.inject({ method: 'GET', url: '/account/' })
    assert.equal(page.statusCode, 200)
    assert.match(String(page.headers['content-type']), /^text\/html/)
    const csp = String(page.headers['content-security-policy'])
    assert.match(csp, /default-src 'none'/)
    assert.match(csp, /script-src 'self'(;|$)/)
    assert.match(csp, /style-src 'self'(;|$)/)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/)
    assert.doesNotMatch(page.body, /<script>|\sstyle=|\son[a-z]+=/, 'no inline script, style or handler')
    for (const file of ['account.js', 'account.css', 'tessera-client.js']) {
      const response = await t.app.inject({ method: 'GET', url: `/account/${file}` })
      assert.equal(response.statusCode, 200, file)
      assert.equal(response.headers['content-security-policy'], csp)
    }
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    assert.ok(!Object.keys(doc.paths).some((path) => path.startsWith('/account')))
  })

  it('serves the client built from the current sources (npm run client:build)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-account-'))
    try {
      await buildClient(join(dir, 'client.js'))
      assert.equal(
        readFileSync(ACCOUNT_PAGE_CLIENT, 'utf8'),
        readFileSync(join(dir, 'client.js'), 'utf8'),
        'account/tessera-client.js is stale: npm run client:build',
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is off in production unless ACCOUNT_PAGE_ENABLED says otherwise, and off with ACCOUNT_PAGE_ENABLED=false', async () => {
    const production = {
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      JWT_SECRET: 'x'.repeat(0),
    }
    assert.equal(loadConfig({ NODE_ENV: 'development' }).accountPageEnabled, true)
    assert.equal(loadConfig(production).accountPageEnabled, false)
    assert.equal(loadConfig({ ...production, ACCOUNT_PAGE_ENABLED: 'true' }).accountPageEnabled, true)
    const off = await buildTestApp({ env: { ACCOUNT_PAGE_ENABLED: 'false' } })
    try {
      assert.equal((await off.app.inject({ method: 'GET', url: '/account/' })).statusCode, 404)
    } finally {
      await off.close()
    }
  })
})
