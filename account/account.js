// The account page (/account): sign in (with the second factor), create an account, sessions, two-factor
// authentication, password change and recent activity, through @tessera/client in cookie mode (the refresh token
// stays in an HttpOnly cookie; refreshes carry the CSRF header). Plain ES modules: no build, no inline script
// or style, so that the page's Content-Security-Policy allows only this origin's files.
import { createTesseraClient, TesseraError } from './tessera-client.js'

const tessera = createTesseraClient({ baseUrl: location.origin, mode: 'cookie' })
const $ = (id) => document.getElementById(id)
const field = (form, name) => form.elements.namedItem(name).value

function say(text) {
  $('status').textContent = text
}

/** Runs a form's action, saying what went wrong in words rather than throwing. */
function onSubmit(id, action) {
  $(id).addEventListener('submit', async (event) => {
    event.preventDefault()
    say('')
    try {
      await action(event.currentTarget)
    } catch (error) {
      say(error instanceof TesseraError ? problemText(error) : 'Something went wrong; try again.')
    }
  })
}

function problemText(error) {
  const fields = error.problem?.errors?.map((item) => `${item.field.replace('/body/', '')} ${item.message}`)
  return fields?.length ? fields.join('; ') : error.message
}

/** Proves who the user is again (password, and code when two-factor is on): what sensitive changes need. */
function reauthenticate(password, code) {
  const factor = code ? (/^\d{6}$/.test(code) ? { code } : { recovery_code: code }) : {}
  return tessera.reauthenticate(password, factor)
}

function list(id, items, render) {
  const ul = $(id)
  ul.replaceChildren(...items.map((item) => render(item)))
}

async function showSignedIn() {
  const me = await tessera.me()
  $('signed-out').hidden = true
  $('signed-in').hidden = false
  $('who').textContent = me.username
  await Promise.all([showSessions(), showMfa(), showActivity()])
}

function showSignedOut() {
  $('signed-in').hidden = true
  $('signed-out').hidden = false
  $('sign-in').hidden = false
  $('second-step').hidden = true
  // The control that had the focus is gone: the keyboard starts again at the sign-in form.
  $('sign-in-username').focus()
}

async function showSessions() {
  list('sessions', await tessera.sessions(), (session) => {
    const li = document.createElement('li')
    const seen = new Date(session.lastUsedAt).toLocaleString()
    li.textContent = `${session.userAgent ?? 'Unknown device'}, ${session.ip ?? 'unknown address'}, last seen ${seen}`
    if (session.current) {
      li.append(' (this device)')
    } else {
      const end = document.createElement('button')
      end.type = 'button'
      end.textContent = 'Sign out'
      onClick(end, async () => {
        await tessera.endSession(session.id)
        await showSessions()
      })
      li.append(end)
    }
    return li
  })
}

async function showMfa() {
  const { data } = await tessera.api.GET('/auth/mfa')
  const on = data?.totp_enabled === true
  $('mfa-state').textContent = on
    ? `On since ${new Date(data.enabled_at).toLocaleDateString()}; ${data.recovery_codes_remaining} recovery codes left.`
    : 'Off: sign-ins need your password only.'
  $('mfa-start').hidden = on
  $('mfa-remove').hidden = !on
}

async function showActivity() {
  list('activity', (await tessera.activity({ limit: 10 })).events, (event) => {
    const li = document.createElement('li')
    li.textContent = `${new Date(event.at).toLocaleString()}: ${event.type}${event.ip ? ` from ${event.ip}` : ''}`
    return li
  })
}

let pendingLogin
onSubmit('sign-in', async (form) => {
  const result = await tessera.login(field(form, 'username'), field(form, 'password'))
  if (result.status === 'mfa_required') {
    pendingLogin = result
    $('sign-in').hidden = true
    $('second-step').hidden = false
    $('second-step-code').focus()
    return
  }
  form.reset()
  await showSignedIn()
})

onSubmit('second-step', async (form) => {
  const code = field(form, 'code').trim()
  await pendingLogin.complete(/^\d{6}$/.test(code) ? { code } : { recovery_code: code })
  form.reset()
  $('sign-in').reset()
  await showSignedIn()
})

onSubmit('register', async (form) => {
  const username = field(form, 'username')
  const password = field(form, 'password')
  await tessera.register({
    username,
    password,
    firstName: field(form, 'firstName'),
    lastName: field(form, 'lastName'),
  })
  await tessera.login(username, password)
  form.reset()
  await showSignedIn()
})

/** Runs a button's action, saying what went wrong in words rather than throwing. */
function onClick(button, action) {
  button.addEventListener('click', async () => {
    say('')
    try {
      await action()
    } catch (error) {
      say(error instanceof TesseraError ? problemText(error) : 'Something went wrong; try again.')
    }
  })
}

onClick($('sign-out'), async () => {
  await tessera.logout()
  showSignedOut()
  say('Signed out.')
})

onClick($('sign-out-others'), async () => {
  const others = (await tessera.sessions()).filter((session) => !session.current)
  for (const session of others) await tessera.endSession(session.id)
  await showSessions()
  say(`Signed out ${others.length} other device${others.length === 1 ? '' : 's'}.`)
})

onSubmit('mfa-start', async (form) => {
  await reauthenticate(field(form, 'password'))
  const { data, error, response } = await tessera.api.POST('/auth/mfa/totp')
  if (!data) throw new TesseraError(response.status, error)
  $('mfa-secret').textContent = data.secret
  $('mfa-qr').src = `data:image/svg+xml;base64,${btoa(data.qr_svg)}`
  form.reset()
  form.hidden = true
  $('mfa-confirm').hidden = false
  $('mfa-confirm-code').focus()
})

onSubmit('mfa-confirm', async (form) => {
  const { data, error, response } = await tessera.api.POST('/auth/mfa/totp/confirm', {
    body: { code: field(form, 'code').trim() },
  })
  if (!data) throw new TesseraError(response.status, error)
  form.reset()
  form.hidden = true
  list('recovery-codes', data.recovery_codes, (code) => {
    const li = document.createElement('li')
    li.textContent = code
    return li
  })
  $('recovery').hidden = false
  await Promise.all([showMfa(), showActivity()])
})

onSubmit('mfa-remove', async (form) => {
  const code = field(form, 'code').trim()
  const factor = /^\d{6}$/.test(code) ? { code } : { recovery_code: code }
  const { error, response } = await tessera.api.DELETE('/auth/mfa/totp', {
    body: { password: field(form, 'password'), ...factor },
  })
  if (!response.ok) throw new TesseraError(response.status, error)
  form.reset()
  $('recovery').hidden = true
  await Promise.all([showMfa(), showActivity()])
})

onSubmit('password', async (form) => {
  const current = field(form, 'current')
  await reauthenticate(current, field(form, 'code').trim())
  const { error, response } = await tessera.api.POST('/users/me/password', {
    body: { currentPassword: current, newPassword: field(form, 'new') },
  })
  if (!response.ok) throw new TesseraError(response.status, error)
  form.reset()
  // Every session ended with the change, this one too.
  await tessera.logout()
  showSignedOut()
  say('Password changed: sign in again with the new one.')
})

// A session this browser already has (its refresh cookie) signs the page in.
try {
  if (await tessera.refresh()) await showSignedIn()
  else showSignedOut()
} catch {
  showSignedOut()
  say('Tessera could not be reached; try again.')
}
