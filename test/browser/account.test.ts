// Issue 16, points 5 and 6: the account page (/account) and the typed client, in a real browser (Debian's
// chromium, driven by playwright-core): sign up, enrol a second factor from the QR code's key, sign in with a
// code, see and end sessions, change the password, read the activity; a refresh after the access token expired;
// two tabs refreshing at once without being signed out; and an app on another origin calling Tessera through
// CORS with the client. Each page's screenshot is saved under test/browser/screenshots/ (gitignored).
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { type Browser, chromium, type Page } from 'playwright-core'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { uniqueUsername } from '../helpers/fixtures.ts'
import { base32Decode, totp } from '../helpers/totp.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SCREENSHOTS = new URL('./screenshots/', import.meta.url).pathname
const PASSWORD = 'a browser passphrase, long'
const CLIENT_BUNDLE = readFileSync(new URL('../../account/tessera-client.js', import.meta.url))

/** A page of another origin (an app's dev server, say) that signs in to Tessera with the client, in cookie mode. */
function startAppPage(tesseraUrl: () => string): Promise<{ server: Server; url: string }> {
  const page = `<!doctype html><html><body><p id="who">signed out</p><script type="module" src="/app.js"></script></body></html>`
  const script = () => `import { createTesseraClient } from '/tessera-client.js'
const tessera = createTesseraClient({ baseUrl: ${JSON.stringify(tesseraUrl())}, mode: 'cookie' })
window.signIn = async (username, password) => {
  await tessera.login(username, password)
  document.getElementById('who').textContent = (await tessera.me()).username
}`
  const server = createServer((request, response) => {
    const [type, body] =
      request.url === '/app.js'
        ? ['text/javascript', script()]
        : request.url === '/tessera-client.js'
          ? ['text/javascript', CLIENT_BUNDLE]
          : ['text/html', page]
    response.writeHead(200, { 'content-type': type }).end(body)
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      resolve({ server, url: `http://127.0.0.1:${port}` })
    }),
  )
}

describe('the account page and the client in a real browser', () => {
  let t: TestApp
  let browser: Browser
  let clock: ReturnType<typeof createFixedClock>
  let base: string
  let app: { server: Server; url: string }
  const problems: string[] = []

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `chromium is not at ${CHROMIUM}: apt-get install chromium (.ci/run does)`)
    mkdirSync(SCREENSHOTS, { recursive: true })
    app = await startAppPage(() => base)
    clock = createFixedClock(Date.now())
    t = await buildTestApp({
      overrides: { clock },
      // Plain-HTTP 127.0.0.1: cookies without Secure, as a development server has them.
      env: { PUBLIC_URL: 'http://127.0.0.1', CORS_ORIGINS: app.url },
    })
    base = await t.app.listen({ port: 0, host: '127.0.0.1' })
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
  })
  after(async () => {
    await browser?.close()
    await t?.close()
    app?.server.close()
  })

  /** A page that records console errors (a CSP violation among them) and failed requests. */
  const open = async (context = browser) => {
    const page = await context.newPage()
    page.on('console', (message) => {
      // Refused calls (a 401 when signed out) are logged by the browser too: those are answers, not faults.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        problems.push(message.text())
      }
    })
    page.on('pageerror', (error) => problems.push(error.message))
    return page
  }
  /** A user registered through the API (not the page): its username; its password is PASSWORD. */
  const registered = async (prefix: string) => {
    const username = uniqueUsername(prefix)
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username, password: PASSWORD, firstName: 'Ada', lastName: 'Lovelace' },
    })
    assert.equal(response.statusCode, 201, response.body)
    return username
  }
  const now = () => Math.floor(clock.now() / 1000)
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true })

  it('signs up, turns on two-factor from the QR code, signs in with a code, and changes the password', async () => {
    const page = await open()
    await page.goto(`${base}/account/`)
    await page.getByRole('heading', { name: 'Sign in' }).waitFor()
    await page.locator('#signed-in').waitFor({ state: 'hidden' })
    await shot(page, '1-signed-out')
    const username = uniqueUsername('browser')
    await page.getByLabel('Username', { exact: true }).nth(1).fill(username)
    await page.getByLabel('First name').fill('Ada')
    await page.getByLabel('Last name').fill('Lovelace')
    await page.getByLabel('Password (at least 8 characters)').fill(PASSWORD)
    await page.getByRole('button', { name: 'Create the account' }).click()
    await page.locator('#who').getByText(username).waitFor()
    await page.getByText('(this device)').waitFor()
    await shot(page, '2-signed-in')
    // Another device of the user's (a password login, before two-factor), to sign out from here later.
    const elsewhere = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username, password: PASSWORD },
    })
    assert.equal(elsewhere.statusCode, 200)

    // Two-factor: the page shows the QR code and its key; the key gives the codes.
    await page.getByLabel('Your password').first().fill(PASSWORD)
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click()
    await page.locator('#mfa-qr').waitFor()
    assert.match(String(await page.locator('#mfa-qr').getAttribute('src')), /^data:image\/svg\+xml;base64,/)
    const secret = base32Decode(String(await page.locator('#mfa-secret').textContent()))
    await shot(page, '3-enrolment')
    await page.getByLabel('Code the app shows').fill(totp(secret, now()))
    await page.getByRole('button', { name: 'Turn on' }).click()
    await page.locator('#recovery-codes li').nth(9).waitFor()
    await page.getByText(/On since/).waitFor()
    // What no longer applies is hidden: the set-up form and the code field; removal is offered instead.
    await page.getByRole('button', { name: 'Set up an authenticator app' }).waitFor({ state: 'hidden' })
    await page.getByRole('button', { name: 'Turn on' }).waitFor({ state: 'hidden' })
    await page.getByRole('button', { name: 'Turn off two-factor authentication' }).waitFor()
    await shot(page, '4-recovery-codes')

    await page.getByRole('button', { name: 'Sign out', exact: true }).first().click()
    await page.getByText('Signed out.').waitFor()
    clock.advance(30_000)
    await page.getByLabel('Username', { exact: true }).first().fill(username)
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByLabel('Code from your authenticator app, or a recovery code').fill(totp(secret, now()))
    await shot(page, '5-second-step')
    await page.getByRole('button', { name: 'Continue' }).click()
    await page.locator('#who').getByText(username).waitFor()
    await page
      .locator('#activity')
      .getByText(/mfa\.enabled/)
      .waitFor()

    // The access token expires; the next call refreshes it (the refresh cookie, with the CSRF header).
    clock.advance(16 * 60_000)
    await page.getByRole('button', { name: 'Sign out other devices' }).click()
    await page.getByText('Signed out 1 other device.').waitFor()
    assert.equal(await page.locator('#sessions li').count(), 1)

    // Two-factor off again: the password and a code.
    clock.advance(30_000)
    await page.locator('#mfa-remove-password').fill(PASSWORD)
    await page.getByLabel('Code from your app, or a recovery code').fill(totp(secret, now()))
    await page.getByRole('button', { name: 'Turn off two-factor authentication' }).click()
    await page.getByText('Off: sign-ins need your password only.').waitFor()

    await page.getByLabel('Current password').fill(PASSWORD)
    await page.getByLabel('New password', { exact: true }).fill('another browser passphrase')
    await page.getByRole('button', { name: 'Change the password' }).click()
    await page.getByText('Password changed: sign in again with the new one.').waitFor()
    await shot(page, '6-password-changed')
    await page.close()
    assert.deepEqual(problems, [], 'no console errors, no CSP violation')
  })

  it('can be used with the keyboard alone: every field has its label, and Enter submits', async () => {
    const username = await registered('keys')
    const page = await open()
    await page.goto(`${base}/account/`)
    await page.getByRole('heading', { name: 'Sign in' }).waitFor()
    // Every input has a label that names it.
    for (const input of await page.locator('input').all()) {
      const id = await input.getAttribute('id')
      assert.equal(await page.locator(`label[for="${id}"]`).count(), 1, `a label for #${id}`)
    }
    // The page starts at the sign-in form's first field.
    assert.equal(
      await page.evaluate(
        () =>
          (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement
            .id,
      ),
      'sign-in-username',
    )
    await page.keyboard.type(username)
    await page.keyboard.press('Tab')
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press('Enter')
    await page.locator('#who').getByText(username).waitFor()
    await page.close()
  })

  it('keeps two tabs signed in when both refresh at once', async () => {
    const context = await browser.newContext()
    const first = await open(context as unknown as Browser)
    await first.goto(`${base}/account/`)
    const username = uniqueUsername('tabs')
    await first.getByLabel('Username', { exact: true }).nth(1).fill(username)
    await first.getByLabel('First name').fill('Grace')
    await first.getByLabel('Last name').fill('Hopper')
    await first.getByLabel('Password (at least 8 characters)').fill(PASSWORD)
    await first.getByRole('button', { name: 'Create the account' }).click()
    await first.locator('#who').getByText(username).waitFor()
    const second = await open(context as unknown as Browser)
    clock.advance(16 * 60_000)
    // Both load at once: each refreshes with the same cookie; the second within the reuse window gets the
    // same new token instead of revoking the session.
    await Promise.all([first.reload(), second.goto(`${base}/account/`)])
    await Promise.all([first, second].map((page) => page.locator('#who').getByText(username).waitFor()))
    await second.reload()
    await second.locator('#who').getByText(username).waitFor()
    await shot(second, '7-two-tabs')
    // Signing out after the access token expired still ends the session: a reload stays signed out.
    clock.advance(16 * 60_000)
    await second.getByRole('button', { name: 'Sign out', exact: true }).first().click()
    await second.getByText('Signed out.').waitFor()
    await second.reload()
    await second.getByRole('heading', { name: 'Sign in' }).waitFor()
    await second.locator('#signed-in').waitFor({ state: 'hidden' })
    await context.close()
    assert.deepEqual(problems, [])
  })

  it('lets an app on another origin sign in through CORS with the client, in cookie mode', async () => {
    const username = await registered('cors')
    const page = await open()
    await page.goto(app.url)
    await page.evaluate(
      ([name, password]) =>
        (globalThis as unknown as { signIn(a?: string, b?: string): Promise<void> }).signIn(name, password),
      [username, PASSWORD],
    )
    await page.locator('#who').getByText(username).waitFor()
    await shot(page, '8-cross-origin-app')
    assert.deepEqual(problems, [])
  })
})
