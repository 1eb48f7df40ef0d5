// Issue 14, point 3: lockout done right (src/auth/lockout.ts). Failed logins of an account slow its logins down
// progressively and never for good; a client that logged in before holds a device token (in the login body, or a
// cookie for browsers) that exempts it from the slowdown others caused, but not from its own failures; and,
// without a device token, a slowed account answers exactly as a wrong password does. Time is a fixed clock that
// the tests move; everything goes through HTTP, as a client and an admin see it.
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { createPasswordHasher } from '../../src/auth/password-hasher.ts'
import { SETTINGS } from '../../src/config/config.schema.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import {
  assertProblem,
  bearer,
  createAdmin,
  login,
  registerUser,
  type TestUser,
  uniqueUsername,
} from '../helpers/fixtures.ts'

// biome-ignore lint/suspicious/noExplicitAny: the tests read the fields they expect and assert on them.
type Json = any

// The defaults (config.schema.ts): the tests below run with them.
const FREE_FAILURES = 5
const MAX_SECONDS = 900
const RESET_HOURS = 24
const WRONG = 'not the password at all'

/** The wait the `failures`-th failure of a counter starts: none up to the free ones, then 1, 2, 4 ... 900 s. */
const waitAfter = (failures: number) =>
  failures <= FREE_FAILURES ? 0 : Math.min(MAX_SECONDS, 2 ** (failures - FREE_FAILURES - 1))

/** The API's form of a time (epoch milliseconds of the fixed clock, floored to the second). */
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString()

/** The device id a device token stands for (`<device>.<expires>.<mac>`), as GET /users/{id}/lockout shows it. */
const deviceOf = (token: string) => token.split('.')[0]

type Attempt = {
  deviceToken?: string
  /** X-Forwarded-For: the client's address where TRUST_PROXY is on. */
  ip?: string
  cookie?: string
  delivery?: 'body' | 'cookie'
}

function attempt(t: TestApp, username: string, password: string, options: Attempt = {}) {
  return t.app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: {
      ...(options.ip ? { 'x-forwarded-for': options.ip } : {}),
      ...(options.cookie ? { cookie: options.cookie } : {}),
    },
    payload: {
      username,
      password,
      ...(options.deviceToken === undefined ? {} : { device_token: options.deviceToken }),
      ...(options.delivery ? { refresh_token_delivery: options.delivery } : {}),
    },
  })
}

/** A login that must succeed; resolves to the device token it hands out. */
async function signIn(t: TestApp, user: TestUser, options: Attempt = {}): Promise<string> {
  const response = await attempt(t, user.username, user.password, options)
  assert.equal(response.statusCode, 200, response.body)
  const { device_token: deviceToken } = response.json()
  assert.equal(typeof deviceToken, 'string')
  return deviceToken
}

/** `count` wrong passwords, each answered as one (401 invalid_credentials, no Retry-After). */
async function fail(t: TestApp, username: string, count: number, options: Attempt = {}) {
  for (let i = 0; i < count; i++) {
    const response = await attempt(t, username, `${WRONG} ${i}`, options)
    assertProblem(response, 401, 'invalid_credentials')
    assert.equal(response.headers['retry-after'], undefined)
  }
}

/** An admin's fresh access token: the fixed clock may have moved past the last one's expiry. */
const adminToken = (t: TestApp, admin: TestUser) => login(t.app, admin.username, admin.password)

/** Events as GET /admin/events shows them, oldest first. */
async function eventsOf(t: TestApp, admin: TestUser, query: Record<string, string>): Promise<Json[]> {
  const token = await adminToken(t, admin)
  const found: Json[] = []
  let cursor: string | undefined
  do {
    const response = await t.app.inject({
      method: 'GET',
      url: '/admin/events',
      query: { limit: '100', ...query, ...(cursor ? { cursor } : {}) },
      headers: bearer(token),
    })
    assert.equal(response.statusCode, 200, response.body)
    found.push(...response.json().events)
    cursor = response.json().nextCursor ?? undefined
  } while (cursor)
  return found.reverse()
}

/** The reasons of the user's failed logins, oldest first. */
async function failureReasons(t: TestApp, admin: TestUser, user: { id: string }): Promise<string[]> {
  const failed = await eventsOf(t, admin, { user: user.id, type: 'login.failed' })
  return failed.map((event) => event.detail.reason)
}

async function lockoutOf(t: TestApp, admin: TestUser, user: { id: string }): Promise<Json> {
  const response = await t.app.inject({
    method: 'GET',
    url: `/users/${user.id}/lockout`,
    headers: bearer(await adminToken(t, admin)),
  })
  assert.equal(response.statusCode, 200, response.body)
  return response.json()
}

describe('issue 14: failed logins slow an account down progressively, and never for good', () => {
  let t: TestApp
  let clock: ReturnType<typeof createFixedClock>
  let admin: TestUser
  beforeEach(async () => {
    clock = createFixedClock()
    t = await buildTestApp({ overrides: { clock } })
    admin = await createAdmin(t.app, t.deps)
  })
  afterEach(() => t.close())

  it('lets 5 failures through, then each failure refuses the next logins for 1, 2, 4 ... s up to 900 s; a refusal during a wait is not checked and not counted', async () => {
    const user = await registerUser(t.app)
    await fail(t, user.username, FREE_FAILURES)
    // Not slowed down yet: the right password works (and, from a client without a device token, forgets nothing).
    await signIn(t, user)
    assert.equal((await lockoutOf(t, admin, user)).slowedDown, false)

    const waits: number[] = []
    for (
      let failures = FREE_FAILURES + 1;
      waits.at(-1) !== MAX_SECONDS || waits.at(-2) !== MAX_SECONDS;
      failures++
    ) {
      const failedAt = clock.now()
      await fail(t, user.username, 1)
      const wait = waitAfter(failures)
      waits.push(wait)
      const state = await lockoutOf(t, admin, user)
      assert.equal(state.slowedDown, true)
      assert.deepEqual(state.counters, [
        {
          device: 'others',
          failures,
          lastFailureAt: iso(failedAt),
          slowedDownUntil: iso(failedAt + wait * 1000),
        },
      ])
      // The last moment of the wait: even the right password is refused, unchecked, as a wrong one.
      clock.advance(wait * 1000 - 1)
      const refused = await attempt(t, user.username, user.password)
      assertProblem(refused, 401, 'invalid_credentials')
      assert.equal(refused.headers['retry-after'], undefined)
      assert.equal(
        (await lockoutOf(t, admin, user)).counters[0].failures,
        failures,
        'a refusal is not counted',
      )
      clock.advance(1)
    }
    assert.deepEqual(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900])

    // Never permanent: once the longest wait is over, the right password works.
    await signIn(t, user)
    assert.deepEqual(await failureReasons(t, admin, user), [
      ...Array(FREE_FAILURES).fill('wrong_password'),
      ...waits.flatMap(() => ['wrong_password', 'slowed_down']),
    ])
  })

  it('checks parallel guesses one at a time once the next failure would slow the account down (found by an outside attack)', async () => {
    const user = await registerUser(t.app)
    // 8 at once: an account's whole share of the hash queue on 2 cores (4 per core), none refused by it.
    const BURST = 8
    const burst = () =>
      Promise.all(Array.from({ length: BURST }, (_, i) => attempt(t, user.username, `${WRONG} burst ${i}`)))
    const failures = async () => (await lockoutOf(t, admin, user)).counters[0]?.failures ?? 0
    // Each check under way may end in a failure, so a burst is checked only up to the free ones, and once
    // they are spent, one guess at a time, until one starts the slowdown.
    let before = 0
    for (let round = 0; before <= FREE_FAILURES && round < 12; round++) {
      for (const response of await burst()) assertProblem(response, 401, 'invalid_credentials')
      const after = await failures()
      assert.ok(
        after <= Math.max(before + 1, FREE_FAILURES),
        `a burst after ${before} failures checked up to ${after}`,
      )
      before = after
    }
    assert.equal(before, FREE_FAILURES + 1)
    // Slowed down (the clock stands still): a further burst is checked not at all.
    await burst()
    assert.equal(await failures(), FREE_FAILURES + 1)
    const reasons = await failureReasons(t, admin, user)
    assert.equal(reasons.filter((reason) => reason === 'wrong_password').length, FREE_FAILURES + 1)
  })

  it('counts a name longer than any username like any other (a 500 on PostgreSQL, found by an outside attack)', async () => {
    const name = `${'a'.repeat(100)}é`
    await fail(t, name, FREE_FAILURES + 1)
    const rows = await t.deps.db.selectFrom('login_throttles').select(['username_key', 'failures']).execute()
    const counted = rows.filter((row) => row.username_key.length === 64 && !row.username_key.startsWith('a'))
    assert.deepEqual(
      counted.map((row) => Number(row.failures)),
      [FREE_FAILURES + 1],
    )
  })

  it('forgets the failures 24 h after the last one: the next ones are free again', async () => {
    const user = await registerUser(t.app)
    await fail(t, user.username, FREE_FAILURES + 1)
    clock.advance(1000)
    await fail(t, user.username, 1)
    const lastFailureAt = clock.now()

    clock.advance(RESET_HOURS * 3_600_000 - 1000)
    const remembered = await lockoutOf(t, admin, user)
    assert.equal(remembered.slowedDown, false)
    assert.deepEqual(remembered.counters, [
      {
        device: 'others',
        failures: FREE_FAILURES + 2,
        lastFailureAt: iso(lastFailureAt),
        slowedDownUntil: null,
      },
    ])

    clock.advance(2000)
    assert.deepEqual((await lockoutOf(t, admin, user)).counters, [])
    // Counted from 1 again: five failures in a row leave the right password working at once.
    await fail(t, user.username, FREE_FAILURES)
    await signIn(t, user)
    assert.equal((await lockoutOf(t, admin, user)).counters[0].failures, FREE_FAILURES)
  })

  it('records login.locked once when a slowdown starts, not at each doubling; again after the failures were forgotten or cleared; never for a name no account has', async () => {
    const user = await registerUser(t.app)
    const locked = () => eventsOf(t, admin, { type: 'login.locked' })

    await fail(t, user.username, FREE_FAILURES + 1)
    for (const wait of [1, 2, 4]) {
      clock.advance(wait * 1000)
      await fail(t, user.username, 1)
    }
    const first = await locked()
    assert.equal(first.length, 1)
    assert.equal(first[0].userId, user.id)
    assert.deepEqual(first[0].actor, { kind: 'anonymous' })
    assert.deepEqual(first[0].detail, { device: 'others', failures: FREE_FAILURES + 1, seconds: 1 })

    // Cleared by an admin: the next slowdown is a new one.
    const cleared = await t.app.inject({
      method: 'DELETE',
      url: `/users/${user.id}/lockout`,
      headers: bearer(await adminToken(t, admin)),
    })
    assert.equal(cleared.statusCode, 204)
    await fail(t, user.username, FREE_FAILURES + 2)
    assert.equal((await locked()).length, 2)

    // Forgotten after the reset hours: likewise.
    clock.advance(RESET_HOURS * 3_600_000 + 1000)
    await fail(t, user.username, FREE_FAILURES + 1)
    assert.deepEqual(
      (await locked()).map((event) => [event.userId, event.detail]),
      Array(3).fill([user.id, { device: 'others', failures: FREE_FAILURES + 1, seconds: 1 }]),
    )

    // A name nobody has is slowed down alike (below), but there is no account to record it about.
    await fail(t, uniqueUsername('nobody'), FREE_FAILURES + 3)
    assert.equal((await locked()).length, 3)
  })
})

describe('issue 14: without a device token, a slowed account and a wrong password are indistinguishable', () => {
  let t: TestApp
  let admin: TestUser
  beforeEach(async () => {
    t = await buildTestApp({ overrides: { clock: createFixedClock() } })
    admin = await createAdmin(t.app, t.deps)
  })
  afterEach(() => t.close())

  /** What a caller can compare: status, headers (but the ones that change with every answer) and body. */
  const PER_ANSWER_HEADERS = new Set(['date'])
  const observable = (response: Awaited<ReturnType<typeof attempt>>) => ({
    status: response.statusCode,
    headers: Object.fromEntries(
      Object.entries(response.headers).filter(([name]) => !PER_ANSWER_HEADERS.has(name.toLowerCase())),
    ),
    body: JSON.parse(response.body),
  })

  it('answers the right password of a slowed account exactly as a wrong password, and as an unknown username', async () => {
    const slowed = await registerUser(t.app)
    const calm = await registerUser(t.app)
    const slowedUnknown = uniqueUsername('nobody')
    await fail(t, slowed.username, FREE_FAILURES + 1)
    await fail(t, slowedUnknown, FREE_FAILURES + 1)

    const answers = {
      'the right password of a slowed account': await attempt(t, slowed.username, slowed.password),
      'a wrong password of a slowed account': await attempt(t, slowed.username, WRONG),
      'a wrong password of an account not slowed': await attempt(t, calm.username, WRONG),
      'an unknown username': await attempt(t, uniqueUsername('nobody'), WRONG),
      'an unknown username slowed down': await attempt(t, slowedUnknown, WRONG),
    }
    const reference = observable(answers['a wrong password of an account not slowed'])
    for (const [what, response] of Object.entries(answers)) {
      assertProblem(response, 401, 'invalid_credentials')
      assert.equal(response.headers['retry-after'], undefined, `${what}: no Retry-After`)
      assert.deepEqual(observable(response), reference, what)
    }
    // The answers are alike, but not the reasons: the slowed account's right password was never checked.
    assert.deepEqual((await failureReasons(t, admin, slowed)).slice(-2), ['slowed_down', 'slowed_down'])
    assert.deepEqual(await failureReasons(t, admin, calm), ['wrong_password'])
  })
})

describe("issue 14: 1,000 wrong guesses from many addresses slow the attacker down, not the owner's device", () => {
  let t: TestApp
  afterEach(() => t.close())

  const GUESSES = 1000
  /** Between two guesses: the storm spans 1000 × 0.5 s, about 8 simulated minutes. */
  const GUESS_INTERVAL_MS = 500
  const OWNER_IP = '198.51.100.7'
  const guessIp = (i: number) => `10.66.${i >> 8}.${i & 255}`

  /** The most guesses the slowdown lets through, one after another, in `seconds`. */
  const mostChecked = (seconds: number) => {
    let checked = FREE_FAILURES + 1
    for (let elapsed = waitAfter(checked); elapsed <= seconds; elapsed += waitAfter(checked)) checked++
    return checked
  }

  const storms = [
    {
      title:
        'with the default per-minute limits (RATE_LIMIT_LOGIN_PER_USERNAME 10, RATE_LIMIT_LOGIN_PER_IP 30)',
      env: {
        RATE_LIMIT_LOGIN_PER_USERNAME: String(SETTINGS.RATE_LIMIT_LOGIN_PER_USERNAME.default),
        RATE_LIMIT_LOGIN_PER_IP: String(SETTINGS.RATE_LIMIT_LOGIN_PER_IP.default),
      },
    },
    {
      title: 'with the per-minute limits off: the slowdown alone',
      env: { RATE_LIMIT_LOGIN_PER_USERNAME: '0', RATE_LIMIT_LOGIN_PER_IP: '0' },
    },
  ]

  for (const storm of storms) {
    it(`${storm.title}: few guesses are checked, ever further apart, and the owner with its device token logs in at once`, async (context) => {
      const clock = createFixedClock()
      t = await buildTestApp({ overrides: { clock }, env: { TRUST_PROXY: 'true', ...storm.env } })
      const admin = await createAdmin(t.app, t.deps)
      const owner = await registerUser(t.app)
      let deviceToken = await signIn(t, owner, { ip: OWNER_IP })
      const startedAt = clock.now()

      const statuses = new Map<string, number>()
      for (let i = 0; i < GUESSES; i++) {
        clock.advance(GUESS_INTERVAL_MS)
        const guess = await attempt(t, owner.username, `guess number ${i}`, { ip: guessIp(i) })
        const { code } = JSON.parse(guess.body)
        if (guess.statusCode === 401) assertProblem(guess, 401, 'invalid_credentials')
        else assertProblem(guess, 429, 'rate_limited')
        statuses.set(`${guess.statusCode} ${code}`, (statuses.get(`${guess.statusCode} ${code}`) ?? 0) + 1)
        if (i % 100 === 50) {
          // During the storm: the owner's device, with the right password, gets in at once.
          deviceToken = await signIn(t, owner, { ip: OWNER_IP, deviceToken })
        }
      }
      const spanSeconds = (clock.now() - startedAt) / 1000
      // And after the storm, at once too.
      await signIn(t, owner, { ip: OWNER_IP, deviceToken })

      const failed = await eventsOf(t, admin, { user: owner.id, type: 'login.failed' })
      const checked = failed.filter((event) => event.detail.reason === 'wrong_password')
      const unchecked = failed.filter((event) => event.detail.reason !== 'wrong_password')
      context.diagnostic(
        `${checked.length} of ${GUESSES} guesses checked over ${spanSeconds} simulated s; answers: ${JSON.stringify(Object.fromEntries(statuses))}; unchecked refusals recorded: ${unchecked.length}`,
      )
      assert.ok(
        checked.length > FREE_FAILURES,
        'the free failures were checked, and the one that began the slowdown',
      )
      assert.ok(
        checked.length <= mostChecked(spanSeconds),
        `${checked.length} guesses checked, more than the slowdown allows in ${spanSeconds} s`,
      )
      // Progressively: past the free failures, each checked guess waited at least the wait its predecessor began.
      const at = checked.map((event) => Date.parse(event.at) / 1000)
      for (let n = FREE_FAILURES + 1; n < at.length; n++) {
        const gap = (at[n] as number) - (at[n - 1] as number)
        assert.ok(
          gap >= waitAfter(n),
          `guess ${n + 1} checked ${gap} s after guess ${n}, before its wait of ${waitAfter(n)} s`,
        )
      }
      for (const event of unchecked) assert.ok(['slowed_down', 'rate_limited'].includes(event.detail.reason))
      assert.equal(
        statuses.get('401 invalid_credentials') ?? 0,
        GUESSES - (statuses.get('429 rate_limited') ?? 0),
      )
      if (storm.env.RATE_LIMIT_LOGIN_PER_USERNAME === '0') {
        assert.equal(statuses.get('429 rate_limited'), undefined)
        assert.equal(
          unchecked.filter((event) => event.detail.reason === 'slowed_down').length,
          GUESSES - checked.length,
        )
      }

      // Only the attackers' counter: the refusals were not counted, and the owner's device has none.
      const state = await lockoutOf(t, admin, owner)
      assert.deepEqual(
        state.counters.map((counter: Json) => [counter.device, counter.failures]),
        [['others', checked.length]],
      )
      const locked = await eventsOf(t, admin, { user: owner.id, type: 'login.locked' })
      assert.deepEqual(
        locked.map((event) => event.detail),
        [{ device: 'others', failures: FREE_FAILURES + 1, seconds: 1 }],
      )
    })
  }
})

describe('issue 14: a device token exempts its holder from the failures of others, not from its own', () => {
  let t: TestApp
  let clock: ReturnType<typeof createFixedClock>
  let admin: TestUser
  beforeEach(async () => {
    clock = createFixedClock()
    t = await buildTestApp({ overrides: { clock } })
    admin = await createAdmin(t.app, t.deps)
  })
  afterEach(() => t.close())

  it('a successful login hands out a device token, valid for a year; the next login of that device renews it', async () => {
    const user = await registerUser(t.app)
    const first = await attempt(t, user.username, user.password)
    assert.equal(first.statusCode, 200)
    const { device_token: token, device_token_expires_in: expiresIn } = first.json()
    assert.match(token, /^[A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{43}$/)
    assert.equal(expiresIn, SETTINGS.DEVICE_TOKEN_TTL_DAYS.default * 86_400)
    clock.advance(60_000)
    const renewed = await signIn(t, user, { deviceToken: token })
    assert.notEqual(renewed, token)
    assert.equal(deviceOf(renewed), deviceOf(token), 'the same device')
    assert.notEqual(deviceOf(await signIn(t, user)), deviceOf(token), 'a client without one: a new device')
  })

  it("the holder of a device token logs in at once while others' failures slow the account down", async () => {
    const owner = await registerUser(t.app)
    const deviceToken = await signIn(t, owner)
    await fail(t, owner.username, FREE_FAILURES + 1)
    assertProblem(await attempt(t, owner.username, owner.password), 401, 'invalid_credentials')
    await signIn(t, owner, { deviceToken })
    // Its success forgets nothing of the others' failures.
    assert.deepEqual(
      (await lockoutOf(t, admin, owner)).counters.map((counter: Json) => [counter.device, counter.failures]),
      [['others', FREE_FAILURES + 1]],
    )
  })

  it("the owner's own wrong passwords slow down only its own device (429 login_slowed_down with Retry-After), not others", async () => {
    const owner = await registerUser(t.app)
    let laptop = await signIn(t, owner)
    const phone = await signIn(t, owner)

    // A device-token holder's wrong password is answered as anyone's.
    await fail(t, owner.username, FREE_FAILURES + 1, { deviceToken: laptop })
    const failedAt = clock.now()
    const slowed = await attempt(t, owner.username, owner.password, { deviceToken: laptop })
    assertProblem(slowed, 429, 'login_slowed_down')
    assert.equal(slowed.headers['retry-after'], '1')

    // Other clients are not slowed down: another device of the owner, and clients without a device token.
    await signIn(t, owner, { deviceToken: phone })
    await signIn(t, owner)
    const state = await lockoutOf(t, admin, owner)
    assert.deepEqual(state, {
      userId: owner.id,
      username: owner.username,
      slowedDown: true,
      counters: [
        {
          device: deviceOf(laptop),
          failures: FREE_FAILURES + 1,
          lastFailureAt: iso(failedAt),
          slowedDownUntil: iso(failedAt + 1000),
        },
      ],
    })
    assert.deepEqual(
      (await eventsOf(t, admin, { user: owner.id, type: 'login.locked' })).map((event) => event.detail),
      [{ device: 'own', failures: FREE_FAILURES + 1, seconds: 1 }],
    )

    // Doubling for the device too, and Retry-After counts down.
    clock.advance(1000)
    await fail(t, owner.username, 1, { deviceToken: laptop })
    assert.equal(
      (await attempt(t, owner.username, owner.password, { deviceToken: laptop })).headers['retry-after'],
      '2',
    )
    clock.advance(1000)
    const later = await attempt(t, owner.username, owner.password, { deviceToken: laptop })
    assertProblem(later, 429, 'login_slowed_down')
    assert.equal(later.headers['retry-after'], '1')

    // Once the wait is over the device gets in, and its success forgets its own failures.
    clock.advance(1000)
    laptop = await signIn(t, owner, { deviceToken: laptop })
    assert.deepEqual(await lockoutOf(t, admin, owner), {
      userId: owner.id,
      username: owner.username,
      slowedDown: false,
      counters: [],
    })
  })

  it('records each refusal of a slowed device once, as login.failed with reason slowed_down', async () => {
    const owner = await registerUser(t.app)
    const laptop = await signIn(t, owner)
    await fail(t, owner.username, FREE_FAILURES + 1, { deviceToken: laptop })
    for (let i = 0; i < 2; i++) {
      const refused = await attempt(t, owner.username, owner.password, { deviceToken: laptop })
      assertProblem(refused, 429, 'login_slowed_down')
    }
    assert.deepEqual(await failureReasons(t, admin, owner), [
      ...Array(FREE_FAILURES + 1).fill('wrong_password'),
      'slowed_down',
      'slowed_down',
    ])
  })

  it("a device token of user A is no token for user B: B's slowdown applies to it, and its failures are counted as others'", async () => {
    const alice = await registerUser(t.app)
    const bob = await registerUser(t.app)
    const alicesToken = await signIn(t, alice)
    await fail(t, bob.username, FREE_FAILURES + 1)

    const refused = await attempt(t, bob.username, bob.password, { deviceToken: alicesToken })
    assertProblem(refused, 401, 'invalid_credentials')
    assert.equal(refused.headers['retry-after'], undefined)
    await signIn(t, alice, { deviceToken: alicesToken })

    clock.advance(1000)
    await fail(t, bob.username, 1, { deviceToken: alicesToken })
    assert.deepEqual(
      (await lockoutOf(t, admin, bob)).counters.map((counter: Json) => [counter.device, counter.failures]),
      [['others', FREE_FAILURES + 2]],
    )
    assert.deepEqual((await lockoutOf(t, admin, alice)).counters, [])
  })

  it('a malformed or tampered device token is no token (not a 400)', async () => {
    const owner = await registerUser(t.app)
    const token = await signIn(t, owner)
    await fail(t, owner.username, FREE_FAILURES + 1)
    const mac = token.split('.')[2] as string
    const tampered = `${token.slice(0, -mac.length)}${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`
    const [device, expires] = token.split('.')
    const extended = `${device}.${Number(expires) + 1}.${mac}`
    for (const deviceToken of ['not a device token', tampered, extended]) {
      const response = await attempt(t, owner.username, owner.password, { deviceToken })
      assertProblem(response, 401, 'invalid_credentials')
      assert.equal(response.headers['retry-after'], undefined)
    }
    await signIn(t, owner, { deviceToken: token })
  })

  it('a device token expires after DEVICE_TOKEN_TTL_DAYS: then it exempts its holder no more', async () => {
    await t.close()
    clock = createFixedClock()
    t = await buildTestApp({ overrides: { clock }, env: { DEVICE_TOKEN_TTL_DAYS: '2' } })
    admin = await createAdmin(t.app, t.deps)
    const owner = await registerUser(t.app)
    const first = await attempt(t, owner.username, owner.password)
    assert.equal(first.json().device_token_expires_in, 2 * 86_400)
    const token = first.json().device_token

    clock.advance(2 * 86_400_000 - 1000)
    await fail(t, owner.username, FREE_FAILURES + 1)
    await signIn(t, owner, { deviceToken: token })
    clock.advance(1000)
    await fail(t, owner.username, 1)
    const expired = await attempt(t, owner.username, owner.password, { deviceToken: token })
    assertProblem(expired, 401, 'invalid_credentials')
    assert.equal(expired.headers['retry-after'], undefined)
  })
})

describe('issue 14: browsers keep the device token in an HttpOnly cookie', () => {
  let t: TestApp
  afterEach(() => t.close())

  for (const { secure, name, path } of [
    { secure: true, name: '__Host-tessera_device', path: '/' },
    { secure: false, name: 'tessera_device', path: '/auth' },
  ]) {
    it(`a cookie-mode login sets ${name} (${secure ? 'Secure' : 'COOKIE_SECURE=false'}), keeps only its lifetime in the body, and a login with the cookie is exempt`, async () => {
      t = await buildTestApp({
        overrides: { clock: createFixedClock() },
        env: { COOKIE_SECURE: String(secure) },
      })
      const owner = await registerUser(t.app)
      const response = await attempt(t, owner.username, owner.password, { delivery: 'cookie' })
      assert.equal(response.statusCode, 200, response.body)
      const body = response.json()
      assert.equal(body.device_token, undefined, 'a script never sees it')
      assert.equal(body.device_token_expires_in, SETTINGS.DEVICE_TOKEN_TTL_DAYS.default * 86_400)
      const cookie = response.cookies.find((candidate) => candidate.name === name)
      assert.ok(cookie, `sets ${name}: ${JSON.stringify(response.headers['set-cookie'])}`)
      assert.equal(cookie.httpOnly, true)
      assert.equal(cookie.secure ?? false, secure)
      assert.equal(cookie.sameSite, 'Strict')
      assert.equal(cookie.path, path)
      assert.equal(cookie.maxAge, body.device_token_expires_in)

      await fail(t, owner.username, FREE_FAILURES + 1)
      assertProblem(await attempt(t, owner.username, owner.password), 401, 'invalid_credentials')
      const withCookie = await attempt(t, owner.username, owner.password, {
        cookie: `${name}=${cookie.value}`,
        delivery: 'cookie',
      })
      assert.equal(withCookie.statusCode, 200, withCookie.body)
      assert.ok(withCookie.cookies.some((renewed) => renewed.name === name))
      // The cookie is bound to the account like the body's token: worthless for another username.
      const other = await registerUser(t.app)
      await fail(t, other.username, FREE_FAILURES + 1)
      const elsewhere = await attempt(t, other.username, other.password, {
        cookie: `${name}=${cookie.value}`,
      })
      assertProblem(elsewhere, 401, 'invalid_credentials')
    })
  }
})

describe("issue 14: an admin sees and clears an account's lockout", () => {
  let t: TestApp
  let clock: ReturnType<typeof createFixedClock>
  let admin: TestUser
  beforeEach(async () => {
    clock = createFixedClock()
    t = await buildTestApp({ overrides: { clock } })
    admin = await createAdmin(t.app, t.deps)
  })
  afterEach(() => t.close())

  it('GET /users/{id}/lockout shows every counter; DELETE forgets them all (204), records login.unlocked, and the right password works at once', async () => {
    const user = await registerUser(t.app)
    const laptop = await signIn(t, user)
    await fail(t, user.username, FREE_FAILURES + 1)
    const othersFailedAt = clock.now()
    clock.advance(3000)
    await fail(t, user.username, FREE_FAILURES + 1, { deviceToken: laptop })
    clock.advance(1000)
    await fail(t, user.username, 1, { deviceToken: laptop })
    const laptopFailedAt = clock.now()

    const state = await lockoutOf(t, admin, user)
    assert.deepEqual(state, {
      userId: user.id,
      username: user.username,
      slowedDown: true,
      counters: [
        {
          device: 'others',
          failures: FREE_FAILURES + 1,
          lastFailureAt: iso(othersFailedAt),
          slowedDownUntil: null,
        },
        {
          device: deviceOf(laptop),
          failures: FREE_FAILURES + 2,
          lastFailureAt: iso(laptopFailedAt),
          slowedDownUntil: iso(laptopFailedAt + 2000),
        },
      ],
    })

    // Slow the others again, so that both are being refused when the admin clears them.
    await fail(t, user.username, 1)
    assertProblem(await attempt(t, user.username, user.password), 401, 'invalid_credentials')
    const token = await adminToken(t, admin)
    const cleared = await t.app.inject({
      method: 'DELETE',
      url: `/users/${user.id}/lockout`,
      headers: bearer(token),
    })
    assert.equal(cleared.statusCode, 204)
    assert.equal(cleared.body, '')
    assert.deepEqual(await lockoutOf(t, admin, user), {
      userId: user.id,
      username: user.username,
      slowedDown: false,
      counters: [],
    })
    await signIn(t, user)
    await signIn(t, user, { deviceToken: laptop })

    const unlocked = await eventsOf(t, admin, { user: user.id, type: 'login.unlocked' })
    assert.equal(unlocked.length, 1)
    assert.deepEqual(unlocked[0].actor, { kind: 'admin', id: admin.id })
    assert.deepEqual(unlocked[0].detail, { throttles: 2 })
  })

  it('only an admin may read or clear it; an unknown user is 404', async () => {
    const user = await registerUser(t.app)
    await fail(t, user.username, FREE_FAILURES + 1)
    for (const method of ['GET', 'DELETE'] as const) {
      const own = await t.app.inject({
        method,
        url: `/users/${user.id}/lockout`,
        headers: bearer(user.token),
      })
      assertProblem(own, 403, 'insufficient_role')
      const anonymous = await t.app.inject({ method, url: `/users/${user.id}/lockout` })
      assert.equal(anonymous.statusCode, 401)
      const unknown = await t.app.inject({
        method,
        url: '/users/00000000-0000-7000-8000-000000000000/lockout',
        headers: bearer(await adminToken(t, admin)),
      })
      assertProblem(unknown, 404, 'user_not_found')
    }
    assert.equal((await lockoutOf(t, admin, user)).slowedDown, true, 'still slowed down')
    assert.deepEqual(await eventsOf(t, admin, { type: 'login.unlocked' }), [])
  })
})

describe("issue 14: others' password checks of an account cannot fill the share of the hash queue its device token holder has", () => {
  it("the owner logs in with its device token while a burst of guesses from many addresses holds the account's share (found by an outside attack)", async () => {
    // Hashes slow enough (tens of ms) that the burst is still queued when the owner's login comes.
    const t = await buildTestApp({
      env: { TRUST_PROXY: 'true' },
      overrides: {
        hasher: createPasswordHasher({ memoryKib: 32 * 1024, iterations: 4, parallelism: 1 }),
      },
    })
    try {
      const owner = await registerUser(t.app)
      const deviceToken = await signIn(t, owner, { ip: '198.51.100.1' })
      // More guesses at once than an account's share of the queue (4 places per core): the last are refused.
      const burst = Array.from({ length: 4 * availableParallelism() + 4 }, (_, i) =>
        attempt(t, owner.username, `${WRONG} ${i}`, { ip: `203.0.113.${i + 1}` }),
      )
      const own = attempt(t, owner.username, owner.password, { deviceToken, ip: '198.51.100.1' })
      const answers = await Promise.all(burst)
      assert.ok(
        answers.some((answer) => answer.statusCode === 429),
        'the burst filled the share of clients without a device token',
      )
      const response = await own
      assert.equal(response.statusCode, 200, response.body)
    } finally {
      await t.close()
    }
  })
})
