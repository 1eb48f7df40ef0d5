// The webhook outbox's parts, built together: the outbox that features write to in their transactions, the
// repository that the admin API and the CLI read, and the dispatcher that a server process runs.
import type { WebhooksConfig } from '../config/load-config.ts'
import type { Db } from '../db/database.ts'
import type { Clock } from '../lib/clock.ts'
import type { Logger } from '../lib/logger.ts'
import {
  createWebhookDeliveryRepository,
  type WebhookDeliveryRepository,
} from './webhook-delivery.repository.ts'
import { createWebhookDispatcher, type WebhookDispatcher } from './webhook-dispatcher.ts'
import { createWebhookOutbox, type WebhookOutbox } from './webhook-outbox.ts'

export type Webhooks = {
  outbox: WebhookOutbox
  deliveries: WebhookDeliveryRepository
  /** Started by the server after it listens; never by a CLI command. */
  dispatcher: WebhookDispatcher
}

export function createWebhooks(
  options: {
    db: Db
    config: WebhooksConfig
    clock: Clock
    log: Logger
    /** Every event type there is, to warn of a WEBHOOK_EVENTS filter that takes none. */
    eventTypes?: readonly string[]
    /** Told of each delivery attempt's outcome (the metrics). */
    onAttempt?: (outcome: 'delivered' | 'failed' | 'dead') => void
  },
  overrides: Partial<Webhooks> = {},
): Webhooks {
  const { db, config, clock, log, eventTypes, onAttempt } = options
  const outbox = overrides.outbox ?? createWebhookOutbox(config.endpoints, clock)
  const deliveries = overrides.deliveries ?? createWebhookDeliveryRepository(db)
  const dispatcher =
    overrides.dispatcher ??
    createWebhookDispatcher({ deliveries, outbox, config, clock, log, eventTypes, onAttempt })
  return { outbox, deliveries, dispatcher }
}
