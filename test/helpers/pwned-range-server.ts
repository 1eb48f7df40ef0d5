// A Pwned Passwords range service for tests: a node:http server on 127.0.0.1 that speaks the real protocol
// (GET <prefix of 5 hex>, answered with the `SUFFIX:COUNT` lines of the breached hashes under that prefix,
// uppercase, CRLF, sorted) for the passwords it is given, pads the answer to 800-1,000 lines of count 0 when
// asked with `Add-Padding: true`, as api.pwnedpasswords.com does, and records what it was asked. It can also be
// told to answer slowly, with another status, or with a body of the test's own.
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'

export type PwnedRangeServerOptions = {
  /** Passwords in the breach data, with how often each was seen (a count above 0). */
  breached?: Record<string, number>
  /**
   * Passwords whose suffix appears only as a padding line (count 0), in every padded answer of their prefix:
   * a client that counts them as found ignores the count.
   */
  paddingOnly?: string[]
}

/** How the server answers; a test may change it between requests. */
export type PwnedRangeAnswer = {
  /** Answered instead of the range (the body then is only a short text). */
  status: number
  /** Before the status line. */
  delayMs: number
  /** After the status line and the first line of the body, before the rest. */
  bodyDelayMs: number
  /** Sent instead of the range lines. */
  body: string | undefined
}

export type PwnedRangeServer = {
  /** The range endpoint, ending in `/range/`. */
  url: string
  /** The path of each request, in order (`/range/21BD1`). */
  requests: string[]
  /** The headers of each request, in order. */
  requestHeaders: IncomingHttpHeaders[]
  answer: PwnedRangeAnswer
  close(): Promise<void>
}

export function sha1Hex(password: string): string {
  return createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase()
}

const PADDED_MIN_LINES = 800
const PADDED_MAX_LINES = 1000

export async function startPwnedRangeServer(
  options: PwnedRangeServerOptions = {},
): Promise<PwnedRangeServer> {
  const breached = Object.entries(options.breached ?? {}).map(([password, count]) => ({
    hash: sha1Hex(password),
    count,
  }))
  const paddingOnly = (options.paddingOnly ?? []).map(sha1Hex)
  const requests: string[] = []
  const requestHeaders: IncomingHttpHeaders[] = []
  const answer: PwnedRangeAnswer = { status: 200, delayMs: 0, bodyDelayMs: 0, body: undefined }
  const timers = new Set<NodeJS.Timeout>()
  /** `then` after `delayMs`, unless the client gave up first (a client's timeout closes its connection). */
  const later = (delayMs: number, response: ServerResponse, then: () => void) => {
    if (delayMs === 0) return then()
    const timer = setTimeout(() => {
      timers.delete(timer)
      if (!response.destroyed) then()
    }, delayMs)
    timers.add(timer)
  }

  /** The answer's lines for `prefix`: its breached suffixes, then padding to 800-1,000 lines when asked. */
  const rangeLines = (prefix: string, padded: boolean): string[] => {
    const lines = breached
      .filter((b) => b.hash.startsWith(prefix))
      .map((b) => `${b.hash.slice(5)}:${b.count}`)
    if (padded) {
      for (const hash of paddingOnly) if (hash.startsWith(prefix)) lines.push(`${hash.slice(5)}:0`)
      const total = randomInt(PADDED_MIN_LINES, PADDED_MAX_LINES + 1)
      while (lines.length < total)
        lines.push(`${randomBytes(18).toString('hex').slice(0, 35).toUpperCase()}:0`)
    }
    return lines.sort()
  }

  const respond = (path: string, padded: boolean, response: ServerResponse) => {
    if (answer.status !== 200) {
      response.writeHead(answer.status, { 'content-type': 'text/plain' }).end('unavailable')
      return
    }
    // The real service answers 200 to every prefix of 5 hex characters, and 400 to anything else.
    const prefix = /^\/range\/([0-9A-Fa-f]{5})$/.exec(path)?.[1]?.toUpperCase()
    if (prefix === undefined) {
      response
        .writeHead(400, { 'content-type': 'text/plain' })
        .end('The hash prefix was not in a valid format')
      return
    }
    const body = answer.body ?? rangeLines(prefix, padded).join('\r\n')
    response.writeHead(200, { 'content-type': 'text/plain' })
    const firstLineEnd = body.indexOf('\n') + 1
    response.write(body.slice(0, firstLineEnd))
    const rest = body.slice(firstLineEnd)
    later(answer.bodyDelayMs, response, () => response.end(rest))
  }

  const server = createServer((request, response) => {
    requests.push(request.url ?? '')
    requestHeaders.push(request.headers)
    const padded = String(request.headers['add-padding']).toLowerCase() === 'true'
    const path = request.url ?? ''
    later(answer.delayMs, response, () => respond(path, padded, response))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('range server has no port')
  return {
    url: `http://127.0.0.1:${address.port}/range/`,
    requests,
    requestHeaders,
    answer,
    async close() {
      // Slow answers still waiting are cut off with their connections.
      for (const timer of timers) clearTimeout(timer)
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
