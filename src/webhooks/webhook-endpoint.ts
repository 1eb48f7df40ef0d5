// One endpoint as the dispatcher calls it, and one attempt: the signed POST, and its outcome in words that are
// safe to store and log. The URL's credentials become an Authorization header (fetch refuses a URL holding
// them), and only its origin is ever shown: a path or query can hold a token too.
import type { WebhookEndpointConfig } from '../config/load-config.ts'
import { createWebhookSigner, type WebhookSigner } from './webhook-signature.ts'

export type WebhookEndpoint = {
  name: string
  /** Without credentials. */
  url: string
  /** What logs show of the URL. */
  origin: string
  /** The URL's credentials (`https://user:password@host/...`), as HTTP Basic authentication. */
  authorization: Record<string, string>
  sign: WebhookSigner
}

export function createWebhookEndpoint(endpoint: WebhookEndpointConfig): WebhookEndpoint {
  const url = new URL(endpoint.url)
  const credentials =
    url.username || url.password
      ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
      : undefined
  url.username = ''
  url.password = ''
  return {
    name: endpoint.name,
    url: url.href,
    origin: url.origin,
    authorization: credentials
      ? { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` }
      : {},
    sign: createWebhookSigner(endpoint.secrets),
  }
}

/** Why an attempt failed, in words safe to store and log: never the URL, nor the error's message. */
function describeFailure(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: unknown })?.name
  if (name === 'TimeoutError') return `no answer within ${timeoutMs} ms`
  const code = (error as { cause?: { code?: unknown } })?.cause?.code
  if (typeof code === 'string') return `connection failed (${code})`
  return `request failed (${typeof name === 'string' ? name : 'unknown error'})`
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
  fetchImpl: typeof fetch = fetch,
): Promise<string | undefined> {
  try {
    const response = await fetchImpl(endpoint.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Tessera-Webhooks/1',
        ...endpoint.authorization,
        ...endpoint.sign(attempt.id, attempt.timestamp, attempt.payload),
      },
      body: attempt.payload,
      redirect: 'manual',
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    })
    // Only the status matters: the body is not read.
    await response.body?.cancel().catch(() => {})
    return response.ok ? undefined : `HTTP ${response.status}`
  } catch (error) {
    return describeFailure(error, timeoutMs)
  }
}
