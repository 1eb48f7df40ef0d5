// Issue 14, point 4: the breached-password check against a local server that speaks the Pwned Passwords range
// protocol: what it finds, what it sends (5 hex characters, asking for padding), and how it fails open.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { createBreachedPasswordCheck, MAX_RANGE_ANSWER_BYTES } from '../../src/auth/breached-passwords.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { LOG_SERIALIZERS } from '../../src/lib/logger.ts'
import { type PwnedRangeServer, sha1Hex, startPwnedRangeServer } from '../helpers/pwned-range-server.ts'

const BREACHED = 'correct horse battery staple'
const PADDING_ONLY = 'a password only padding mentions'
const UNKNOWN = 'nobody has ever used this one, 7f3a'

/** A real pino logger, as the server's, writing its JSON lines into `lines`. */
function recordingLogger() {
  const lines: string[] = []
  const log = pino(
    { level: 'info', serializers: LOG_SERIALIZERS },
    { write: (line: string) => lines.push(line) },
  )
  const warnings = () => lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 40)
  return { log, lines, warnings }
}

/**
 * Asserts no log line holds the password, its SHA-1 (either case) or the prefix sent for it. Pino's own fields
 * (time, pid, hostname) are left out: 5 hex characters can be digits that a time happens to contain.
 */
function assertLogsKeepSecret(lines: string[], password: string) {
  const hash = sha1Hex(password)
  const secrets = [password, hash, hash.slice(5), hash.slice(0, 5)].flatMap((s) => [s, s.toLowerCase()])
  for (const line of lines) {
    const { time, pid, hostname, ...fields } = JSON.parse(line)
    const written = JSON.stringify(fields)
    for (const secret of secrets) assert.ok(!written.includes(secret), `a log line holds ${secret}: ${line}`)
  }
}

describe('breached-password check (Pwned Passwords range API)', () => {
  let range: PwnedRangeServer
  before(async () => {
    range = await startPwnedRangeServer({ breached: { [BREACHED]: 52_579 }, paddingOnly: [PADDING_ONLY] })
  })
  after(() => range.close())

  const check = (logger = recordingLogger()) =>
    createBreachedPasswordCheck({ url: range.url, timeoutMs: 2000 }, logger.log)

  it('finds a password that is in the breach data (a count above 0)', async () => {
    assert.equal(await check()(BREACHED), true)
  })

  it('does not find a password that is not', async () => {
    const logger = recordingLogger()
    assert.equal(await check(logger)(UNKNOWN), false)
    assert.deepEqual(logger.lines, [], 'an answer that does not list it is not a failure')
  })

  it('ignores a padding line (count 0), even for the password’s own suffix', async () => {
    range.requests.length = 0
    assert.equal(await check()(PADDING_ONLY), false)
    assert.equal(range.requestHeaders.at(-1)?.['add-padding'], 'true', 'so the line was there')
  })

  it('sends only the first 5 hex characters of the SHA-1, uppercase, asking for padding', async () => {
    range.requests.length = 0
    range.requestHeaders.length = 0
    const passwords = [BREACHED, UNKNOWN, 'Ünïcödé pässwörd 🔑']
    for (const password of passwords) await check()(password)
    assert.deepEqual(
      range.requests,
      passwords.map((password) => `/range/${sha1Hex(password).slice(0, 5)}`),
    )
    for (const [n, path] of range.requests.entries()) {
      const password = passwords[n] ?? ''
      assert.ok(!path.includes(encodeURIComponent(password)) && !path.includes(sha1Hex(password).slice(5)))
    }
    for (const headers of range.requestHeaders) {
      assert.equal(headers['add-padding'], 'true')
      assert.match(headers['user-agent'] ?? '', /^Tessera/)
    }
  })

  it('accepts the range URL without its trailing slash', async () => {
    range.requests.length = 0
    const check = createBreachedPasswordCheck(
      { url: range.url.replace(/\/$/, ''), timeoutMs: 2000 },
      recordingLogger().log,
    )
    assert.equal(await check(BREACHED), true)
    assert.deepEqual(range.requests, [`/range/${sha1Hex(BREACHED).slice(0, 5)}`])
  })

  it('is off without PWNED_PASSWORDS_URL: finds nothing and asks nobody', async () => {
    range.requests.length = 0
    const logger = recordingLogger()
    const check = createBreachedPasswordCheck(undefined, logger.log)
    assert.equal(await check(BREACHED), false)
    assert.deepEqual(range.requests, [])
    assert.deepEqual(logger.lines, [])
  })
})

describe('breached-password check when the service fails: it fails open, and says so', () => {
  let range: PwnedRangeServer
  before(async () => {
    range = await startPwnedRangeServer({ breached: { [BREACHED]: 3 } })
  })
  after(() => range.close())

  const failingCheck = (logger: ReturnType<typeof recordingLogger>, clock = createFixedClock()) =>
    createBreachedPasswordCheck({ url: range.url, timeoutMs: 150 }, logger.log, clock)

  it('lets the password through on a timeout, and logs a warning at most once a minute', async (t) => {
    range.answer.delayMs = 2000
    t.after(() => {
      range.answer.delayMs = 0
    })
    const logger = recordingLogger()
    const clock = createFixedClock()
    const check = failingCheck(logger, clock)

    assert.equal(await check(BREACHED), false)
    assert.equal(logger.warnings().length, 1)
    assert.match(logger.warnings()[0]?.failure, /no answer within 150 ms/)

    clock.advance(59_999)
    assert.equal(await check(BREACHED), false)
    assert.equal(logger.warnings().length, 1, 'a second failure within the minute is not logged')

    clock.advance(1)
    assert.equal(await check(BREACHED), false)
    assert.equal(logger.warnings().length, 2, 'a minute later it is logged again')
    assert.equal(logger.warnings()[1]?.failuresSinceLastReport, 2)
    assertLogsKeepSecret(logger.lines, BREACHED)
  })

  it('counts the time to read the body too: a service that stalls mid-answer is cut off', async (t) => {
    range.answer.bodyDelayMs = 2000
    t.after(() => {
      range.answer.bodyDelayMs = 0
    })
    const logger = recordingLogger()
    const started = performance.now()
    assert.equal(await failingCheck(logger)(BREACHED), false)
    assert.ok(performance.now() - started < 1500, 'it did not wait for the rest of the body')
    assert.match(logger.warnings()[0]?.failure, /no answer within 150 ms/)
    assertLogsKeepSecret(logger.lines, BREACHED)
  })

  it('lets the password through on a 503, and logs it', async (t) => {
    range.answer.status = 503
    t.after(() => {
      range.answer.status = 200
    })
    const logger = recordingLogger()
    assert.equal(await failingCheck(logger)(BREACHED), false)
    assert.equal(logger.warnings().length, 1)
    assert.equal(logger.warnings()[0]?.failure, 'HTTP 503')
    assertLogsKeepSecret(logger.lines, BREACHED)
  })

  it('lets the password through when the connection is refused, and logs it', async () => {
    const closed = await startPwnedRangeServer()
    await closed.close()
    const logger = recordingLogger()
    const check = createBreachedPasswordCheck({ url: closed.url, timeoutMs: 1000 }, logger.log)
    assert.equal(await check(BREACHED), false)
    assert.equal(logger.warnings()[0]?.failure, 'connection failed (ECONNREFUSED)')
    assertLogsKeepSecret(logger.lines, BREACHED)
  })

  it('lets the password through on an answer that is not a range (an error page), and logs it', async (t) => {
    range.answer.body = '<html><body>Service temporarily unavailable</body></html>'
    t.after(() => {
      range.answer.body = undefined
    })
    const logger = recordingLogger()
    assert.equal(await failingCheck(logger)(BREACHED), false)
    assert.equal(logger.warnings()[0]?.failure, 'an answer that is not a range of hashes')
    assertLogsKeepSecret(logger.lines, BREACHED)
  })

  it('reads no more than 1 MiB of an answer', async (t) => {
    const line = `${sha1Hex(BREACHED).slice(5)}:3\r\n`
    range.answer.body = line.repeat(Math.ceil((MAX_RANGE_ANSWER_BYTES + 1) / line.length))
    t.after(() => {
      range.answer.body = undefined
    })
    const logger = recordingLogger()
    assert.equal(await failingCheck(logger)(BREACHED), false, 'even though it lists the password')
    assert.match(logger.warnings()[0]?.failure, /^an answer over \d+ bytes$/)
    assertLogsKeepSecret(logger.lines, BREACHED)
  })
})
