// One endpoint as the dispatcher calls it, and one attempt: the signed POST, and its outcome in words that are
// safe to store and log. The URL's credentials become an Authorization header, and only its origin is ever
// shown: a path or query can hold a token too. Sent with node:http(s) over a keep-alive agent of the endpoint's
// own: fetch (undici) cost 3 to 4 times the CPU per delivery, measured in the events bench (decision 0013).
import http from 'node:http'
import https from 'node:https'
import type { WebhookEndpointConfig } from '../config/load-config.ts'
import { createWebhookSigner, type WebhookSigner } from './webhook-signature.ts'

export type WebhookEndpoint = {
  name: string
  /** Without credentials. */
  url: URL
  /** What logs show of the URL. */
  origin: string
  /** The URL's credentials (`https://user:password@host/...`), as HTTP Basic authentication. */
  authorization: Record<string, string>
  sign: WebhookSigner
  /** Its connections, kept open between deliveries. */
  agent: http.Agent
  /** Closes its idle connections (when the dispatcher stops). */
  close(): void
}

export function createWebhookEndpoint(endpoint: WebhookEndpointConfig): WebhookEndpoint {
  const url = new URL(endpoint.url)
  const credentials =
    url.username || url.password
      ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
      : undefined
  url.username = ''
  url.password = ''
  const agent =
    url.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true })
  return {
    name: endpoint.name,
    url,
    origin: url.origin,
    authorization: credentials
      ? { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` }
      : {},
    sign: createWebhookSigner(endpoint.secrets),
    agent,
    close: () => agent.destroy(),
  }
}

/** Why an attempt failed, in words safe to store and log: never the URL, nor the error's message. */
function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof NoAnswerInTime) return `no answer within ${timeoutMs} ms`
  const code = (error as { code?: unknown })?.code
  if (typeof code === 'string') return `connection failed (${code})`
  const name = (error as { name?: unknown })?.name
  return `request failed (${typeof name === 'string' ? name : 'unknown error'})`
}

/** The error of an attempt that had no answer within the endpoint's time. */
class NoAnswerInTime extends Error {}

/**
 * One POST: resolves to the status once it is known (the body is drained unread), rejects with the request's
 * error, or NoAnswerInTime after `timeoutMs`. `reusedSocket` on the error: it was sent on a kept-alive
 * connection. A timer and a listener rather than AbortSignal.timeout and AbortSignal.any, which cost more.
 */
function post(
  endpoint: WebhookEndpoint,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<number> {
  const client = endpoint.url.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const request = client.request(endpoint.url, { method: 'POST', headers, agent: endpoint.agent })
    const abandon = () => request.destroy(new Error('abandoned'))
    const timer = setTimeout(() => request.destroy(new NoAnswerInTime()), timeoutMs)
    signal.addEventListener('abort', abandon, { once: true })
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', abandon)
    }
    request.once('response', (response) => {
      done()
      // The body is not read; a receiver that sends one slowly is cut off by its socket's end, not awaited.
      response.on('error', () => {})
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    request.once('error', (error) => {
      done()
      reject(Object.assign(error, { reusedSocket: request.reusedSocket }))
    })
    request.end(body)
  })
}

/**
 * POSTs one attempt, signed at `timestamp` (epoch seconds). Resolves to undefined when the receiver answered
 * 2xx within `timeoutMs`, else to why not. A redirect is a failure, not followed: it could carry the signed
 * message elsewhere. `signal` abandons the attempt (its outcome then does not matter).
 */
export async function attemptDelivery(
  endpoint: WebhookEndpoint,
  attempt: { id: string; payload: string; timestamp: number },
  signal: AbortSignal,
  timeoutMs: number,
): Promise<string | undefined> {
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(attempt.payload)),
    'user-agent': 'Tessera-Webhooks/1',
    ...endpoint.authorization,
    ...endpoint.sign(attempt.id, attempt.timestamp, attempt.payload),
  }
  try {
    let status: number
    try {
      status = await post(endpoint, headers, attempt.payload, signal, timeoutMs)
    } catch (error) {
      // A kept-alive connection the receiver closed as we reused it: sent again once on a new one (receivers
      // deduplicate by webhook-id, so a repeat is harmless).
      const { code, reusedSocket } = error as { code?: unknown; reusedSocket?: boolean }
      if (code !== 'ECONNRESET' || !reusedSocket || signal.aborted) throw error
      status = await post(endpoint, headers, attempt.payload, signal, timeoutMs)
    }
    return status >= 200 && status < 300 ? undefined : `HTTP ${status}`
  } catch (error) {
    return describeFailure(error, timeoutMs)
  }
}
