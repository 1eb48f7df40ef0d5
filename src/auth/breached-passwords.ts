// Whether a new password is known from data breaches, by a Pwned Passwords range service (PWNED_PASSWORDS_URL):
// NIST SP 800-63B (5.1.1.2) asks verifiers to refuse passwords found in breach corpuses. The service never sees
// the password nor its hash: only the first 5 hex characters of its SHA-1 are sent (k-anonymity: hundreds of
// breached hashes share them), with `Add-Padding` so that the answer's size does not narrow them down either.
// It is an extra check, not the only one (password-policy.ts has the local list): when the service cannot
// answer in time, or answers wrong, the check fails open (the password is let through) and says so in the log,
// at most once a minute, so that an outage there does not stop registrations here.
import { createHash } from 'node:crypto'
import type { BreachedPasswordsConfig } from '../config/load-config.ts'
import { type Clock, systemClock } from '../lib/clock.ts'
import type { Logger } from '../lib/logger.ts'

/** Resolves to true when the password is in the breach data (a count above 0); never rejects. */
export type BreachedPasswordCheck = (password: string) => Promise<boolean>

/** An answer is 800 to 1,000 lines of 40 bytes with padding, about 40 KB; more than this is not a range answer. */
export const MAX_RANGE_ANSWER_BYTES = 1024 * 1024

const FAILURE_LOG_INTERVAL_MS = 60_000

/** Without `config` (PWNED_PASSWORDS_URL unset), a check that finds nothing and never touches the network. */
export function createBreachedPasswordCheck(
  config: BreachedPasswordsConfig,
  log: Logger,
  clock: Clock = systemClock,
): BreachedPasswordCheck {
  if (config === undefined) return async () => false
  const base = new URL(config.url)
  // `…/range` and `…/range/` both mean the range endpoint: without the slash, the prefix would replace `range`.
  if (!base.pathname.endsWith('/')) base.pathname += '/'
  // Not reportAtMostEvery: it reads Date.now, and tests move `clock` to see the next minute's report.
  let lastReportAt = Number.NEGATIVE_INFINITY
  let unreported = 0
  const reportFailure = (failure: string) => {
    unreported += 1
    if (clock.now() - lastReportAt < FAILURE_LOG_INTERVAL_MS) return
    lastReportAt = clock.now()
    log.warn(
      { pwnedPasswords: base.origin, failure, failuresSinceLastReport: unreported },
      'breached-password check failed open: passwords are accepted without it',
    )
    unreported = 0
  }

  return async (password) => {
    const sha1 = createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase()
    const prefix = sha1.slice(0, 5)
    const suffix = sha1.slice(5)
    try {
      const answer = await fetchRange(new URL(prefix, base), config.timeoutMs)
      return breachCount(answer, suffix) > 0
    } catch (error) {
      reportFailure(describeFailure(error, config.timeoutMs))
      return false
    }
  }
}

/** What was wrong with an answer; its message is written here, and safe to log. */
class RangeAnswerError extends Error {}

/** The range answer's text; rejects on a non-2xx status, an oversized body, or after `timeoutMs` in all. */
async function fetchRange(url: URL, timeoutMs: number): Promise<string> {
  // One signal for the connection, the headers and the body: a service that dribbles its answer is cut off too.
  const signal = AbortSignal.timeout(timeoutMs)
  const response = await fetch(url, {
    headers: { 'add-padding': 'true', 'user-agent': 'Tessera-PwnedPasswords/1', accept: 'text/plain' },
    signal,
  })
  if (!response.ok) {
    await response.body?.cancel()
    throw new RangeAnswerError(`HTTP ${response.status}`)
  }
  if (response.body === null) throw new RangeAnswerError('an empty answer')
  const chunks: Uint8Array[] = []
  let bytes = 0
  for await (const chunk of response.body) {
    bytes += chunk.byteLength
    // Throwing out of the loop cancels the stream, and so the rest of the download.
    if (bytes > MAX_RANGE_ANSWER_BYTES)
      throw new RangeAnswerError(`an answer over ${MAX_RANGE_ANSWER_BYTES} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

const RANGE_LINE = /^([0-9A-Fa-f]{35}):(\d+)$/

/**
 * The count on `suffix`'s line of a range answer (`SUFFIX:COUNT` lines), or 0. Padding lines count 0 and so
 * match nothing. An answer without a single such line is not a range answer (a proxy's error page, say): it
 * throws, so that the check is reported as failed rather than passed.
 */
function breachCount(answer: string, suffix: string): number {
  let lines = 0
  for (const line of answer.split('\n')) {
    const match = RANGE_LINE.exec(line.trim())
    if (match === null) continue
    lines += 1
    if (match[1]?.toUpperCase() === suffix) return Number(match[2])
  }
  if (lines === 0) throw new RangeAnswerError('an answer that is not a range of hashes')
  return 0
}

/** Why the check failed, in words safe to log: never the URL (it ends in the prefix), nor an error's message. */
function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof RangeAnswerError) return error.message
  const name = (error as { name?: unknown })?.name
  if (name === 'TimeoutError') return `no answer within ${timeoutMs} ms`
  const cause = (error as { cause?: { code?: unknown } })?.cause
  if (typeof cause?.code === 'string') return `connection failed (${cause.code})`
  return `request failed (${typeof name === 'string' ? name : 'unknown error'})`
}
