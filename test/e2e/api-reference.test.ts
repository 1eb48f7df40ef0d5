// Issue 16, point 4: the API reference at /docs, rendered from the same OpenAPI document, its assets served from
// the npm package (no CDN), turned off with DOCS_ENABLED=false.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'

describe('GET /docs', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('serves the API reference page, every asset from this server, under a Content-Security-Policy', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs' })
    assert.equal(page.statusCode, 200)
    assert.match(String(page.headers['content-type']), /^text\/html/)
    const sources = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] as string)
    assert.ok(sources.length >= 3, page.body)
    for (const source of sources) {
      assert.match(source, /^\/docs\/static\//, `${source} is served here, not from a CDN`)
      const asset = await t.app.inject({ method: 'GET', url: source })
      assert.equal(asset.statusCode, 200, source)
    }
    const csp = String(page.headers['content-security-policy'])
    assert.match(csp, /default-src 'self'/)
    assert.match(csp, /script-src 'self'/)
    assert.doesNotMatch(csp, /validator\.swagger\.io|upgrade-insecure-requests/)
  })

  it('renders the document /openapi.json serves', async () => {
    const served = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const rendered = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json()
    assert.deepEqual(rendered.paths, served.paths)
    const initializer = await t.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
    assert.equal(initializer.statusCode, 200)
    // Swagger UI's validator badge would call validator.swagger.io: turned off.
    assert.match(initializer.body, /validatorUrl: null/)
    assert.doesNotMatch(initializer.body, /validator\.swagger\.io/)
  })

  it('is not in the OpenAPI document itself', async () => {
    const served = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    assert.ok(!Object.keys(served.paths).some((path) => path.startsWith('/docs')))
  })
})

describe('DOCS_ENABLED=false', () => {
  it('serves no reference page, and still the document', async () => {
    const t = await buildTestApp({ env: { DOCS_ENABLED: 'false' } })
    try {
      assert.equal((await t.app.inject({ method: 'GET', url: '/docs' })).statusCode, 404)
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css' })).statusCode,
        404,
      )
      assert.equal((await t.app.inject({ method: 'GET', url: '/openapi.json' })).statusCode, 200)
    } finally {
      await t.close()
    }
  })
})
