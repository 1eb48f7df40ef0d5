// The outbox's write side: a message becomes one delivery row per endpoint it goes to, written with the
// transaction of the change it reports, so that a change that commits is delivered (at least once) and one
// that rolls back never is. Sending is the dispatcher's (webhook-dispatcher.ts).
import type { WebhookEndpointConfig } from '../config/load-config.ts'
import type { Db } from '../db/database.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId } from '../lib/ids.ts'
import { insertDeliveries, type NewDelivery } from './webhook-delivery.repository.ts'
import { type WebhookMessage, webhookPayload } from './webhook-signature.ts'

export interface WebhookOutbox {
  /**
   * Enqueues an event for every endpoint whose filter (WEBHOOK_EVENTS) takes its type; none without
   * WEBHOOK_URL. `db` is the transaction that records the event. Returns the deliveries' ids.
   */
  enqueue(db: Db, message: WebhookMessage): Promise<string[]>
  /**
   * Enqueues a message for one endpoint by name, whatever its filter (a password-reset link, issue 14). With
   * `expiresAt` (epoch seconds) it is never sent after that time, and its payload is erased once it is
   * delivered, dead or expired: a message that expires holds a secret. Refuses an endpoint not configured.
   */
  enqueueTo(
    db: Db,
    endpoint: string,
    message: WebhookMessage,
    options?: { expiresAt?: number },
  ): Promise<string>
  /** Whether the endpoint is configured. */
  has(endpoint: string): boolean
  /**
   * Calls `listener` with the ids of every enqueue, as it writes them (before its transaction commits), so that
   * a dispatcher in this process can send them at once. Returns the function that stops listening.
   */
  onEnqueued(listener: (ids: string[]) => void): () => void
}

/** Whether an endpoint's filter takes the event type: the type itself, its family (`user.*`), or `*`. */
export function filterTakes(filters: readonly string[], type: string): boolean {
  return filters.some(
    (filter) =>
      filter === '*' || filter === type || (filter.endsWith('.*') && type.startsWith(filter.slice(0, -1))),
  )
}

export function createWebhookOutbox(
  endpoints: readonly WebhookEndpointConfig[],
  clock: Clock,
): WebhookOutbox {
  const listeners = new Set<(ids: string[]) => void>()
  const write = async (db: Db, names: string[], message: WebhookMessage, expiresAt: number | null) => {
    if (names.length === 0) return []
    const payload = webhookPayload(message)
    const createdAt = epochSeconds(clock)
    const deliveries: NewDelivery[] = names.map((endpoint) => ({
      id: newId(),
      endpoint,
      type: message.type,
      payload,
      createdAt,
      expiresAt,
    }))
    await insertDeliveries(db, deliveries)
    const ids = deliveries.map((delivery) => delivery.id)
    for (const listener of listeners) listener(ids)
    return ids
  }

  return {
    enqueue(db, message) {
      const names = endpoints.filter((e) => filterTakes(e.events, message.type)).map((e) => e.name)
      return write(db, names, message, null)
    },

    async enqueueTo(db, endpoint, message, options = {}) {
      if (!endpoints.some((e) => e.name === endpoint)) {
        throw new Error(`The webhook endpoint "${endpoint}" is not configured`)
      }
      const [id] = await write(db, [endpoint], message, options.expiresAt ?? null)
      if (id === undefined) throw new Error('A delivery was enqueued without an id')
      return id
    },

    has: (endpoint) => endpoints.some((e) => e.name === endpoint),

    onEnqueued(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
