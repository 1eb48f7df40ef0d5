// A webhook receiver for tests: a node:http server on 127.0.0.1 that answers each request as the test says
// (a status, or never), records what it got, and checks signatures independently of Tessera: with the
// `standardwebhooks` library's verify, and by hand, by the specification (HMAC-SHA256 of `id.timestamp.body`
// under the base64-decoded secret, in a space-separated list of `v1,<base64>`).
import assert from 'node:assert/strict'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { Webhook } from 'standardwebhooks'

export type Received = {
  id: string
  timestamp: string
  signature: string
  contentType: string
  /** The Authorization header, if any (credentials in the URL are sent as Basic authentication). */
  authorization: string
  body: string
  /** What the receiver answered; 0 when it never did. */
  status: number
}

/** `respond`: for the n-th request (from 0), a status to answer, or 'hang' to answer never. */
export type Respond = (n: number, request: Received) => number | 'hang'

export type Receiver = {
  url: string
  received: Received[]
  respond: Respond
  /** Resolves once `done` holds, polling; fails after `timeoutMs`. */
  waitFor(done: () => boolean, timeoutMs?: number, what?: string): Promise<void>
  /** Ids answered 2xx, each as many times as it was. */
  acceptedIds(): string[]
  close(): Promise<void>
}

/** `delayMs`: how long it takes to answer each request (a slow receiver). */
export async function startReceiver(
  respond: Respond = () => 204,
  { delayMs = 0 }: { delayMs?: number } = {},
): Promise<Receiver> {
  const received: Received[] = []
  const hanging = new Set<ServerResponse>()
  const receiver = {} as Receiver
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const header = (name: string) => String(request.headers[name] ?? '')
      const entry: Received = {
        id: header('webhook-id'),
        timestamp: header('webhook-timestamp'),
        signature: header('webhook-signature'),
        contentType: header('content-type'),
        authorization: header('authorization'),
        body: Buffer.concat(chunks).toString('utf8'),
        status: 0,
      }
      const answer = receiver.respond(received.length, entry)
      received.push(entry)
      if (answer === 'hang') {
        hanging.add(response)
        return
      }
      entry.status = answer
      setTimeout(() => response.writeHead(answer).end(), delayMs)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('receiver has no port')
  Object.assign(receiver, {
    url: `http://127.0.0.1:${address.port}/hooks/tessera`,
    received,
    respond,
    async waitFor(done: () => boolean, timeoutMs = 10_000, what = 'the receiver to get what it expects') {
      const started = performance.now()
      while (!done()) {
        if (performance.now() - started > timeoutMs)
          assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
        await sleep(10)
      }
    },
    acceptedIds: () => received.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.id),
    async close() {
      for (const response of hanging) response.destroy()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  } satisfies Receiver)
  return receiver
}

/** A `whsec_` secret of 32 random-looking bytes, fixed so that failures are reproducible. */
export const TEST_WEBHOOK_SECRET = `whsec_${Buffer.from('tessera test webhook secret, 32b').toString('base64')}`

/**
 * Asserts the request is signed with `secret`, twice over: by the `standardwebhooks` library (which also
 * checks the timestamp is within 5 minutes of now, unless `checkTime` is false) and by hand, per the spec.
 */
export function assertSigned(entry: Received, secret: string, { checkTime = true } = {}): void {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const expected = createHmac('sha256', key).update(`${entry.id}.${entry.timestamp}.${entry.body}`).digest()
  const matches = entry.signature.split(' ').some((versioned) => {
    const [version, signature] = versioned.split(',')
    if (version !== 'v1' || signature === undefined) return false
    const given = Buffer.from(signature, 'base64')
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
  assert.ok(matches, `no v1 signature of ${entry.id} matches the secret by hand`)
  assert.match(entry.timestamp, /^\d+$/, 'webhook-timestamp is integer epoch seconds')
  if (checkTime) {
    const headers = {
      'webhook-id': entry.id,
      'webhook-timestamp': entry.timestamp,
      'webhook-signature': entry.signature,
    }
    assert.doesNotThrow(() => new Webhook(secret).verify(entry.body, headers), 'the library verifies it')
  }
}
