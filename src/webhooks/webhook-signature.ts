// What a delivery looks like on the wire, per the Standard Webhooks specification: the body `{type, timestamp,
// data}` and the headers `webhook-id`, `webhook-timestamp` and `webhook-signature`, the latter an HMAC-SHA256
// of `id.timestamp.body` under each configured secret (the `standardwebhooks` library computes it).
import { Webhook } from 'standardwebhooks'
import { isoTime } from '../lib/clock.ts'

/** What is sent: an event (or, from issue 14 on, another message) with its type and time. */
export type WebhookMessage = {
  /** The id of what the message reports (the event's); the delivery has an id of its own, its webhook-id. */
  id: string
  /** Dotted, as the specification asks: `user.registered`. */
  type: string
  /** When it happened, in epoch seconds. */
  timestamp: number
  data: unknown
}

/** The body: the timestamp is when the event happened (RFC 3339), not when this attempt is made. */
export function webhookPayload(message: WebhookMessage): string {
  return JSON.stringify({
    type: message.type,
    timestamp: isoTime(message.timestamp),
    data: message.data,
  })
}

export type WebhookSigner = (id: string, timestamp: number, payload: string) => Record<string, string>

/**
 * The signing headers of one attempt, under every secret (`whsec_...`), space-separated, so that a receiver
 * holding either the new or the old secret accepts it during a rotation. `timestamp` is the attempt's own
 * (epoch seconds): receivers refuse one too far from their clock, so each attempt is signed anew.
 */
export function createWebhookSigner(secrets: readonly string[]): WebhookSigner {
  const keys = secrets.map((secret) => new Webhook(secret))
  return (id, timestamp, payload) => ({
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': keys.map((key) => key.sign(id, new Date(timestamp * 1000), payload)).join(' '),
  })
}
