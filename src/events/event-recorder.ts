// Records security events in the transaction of the change they record, together with their webhook outbox
// messages: the change, its events and their deliveries commit or roll back as one (decision 0012).
import { createHmac } from 'node:crypto'
import type { Db } from '../db/database.ts'
import { inTransaction } from '../db/transact.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId } from '../lib/ids.ts'
import { createEventRepository } from './event.repository.ts'
import { type NewEvent, type SecurityEvent, storedClient } from './event.ts'
import { eventResponse } from './events.schemas.ts'

/** A message for the webhook outbox: `id` is the event's, `data` the event as the API shows it. */
export type OutboxMessage = { id: string; type: string; timestamp: number; data: unknown }

/** What the recorder needs of the webhook outbox (src/webhooks/): an insert in the caller's transaction. */
export interface EventOutbox {
  enqueue(db: Db, message: OutboxMessage): Promise<unknown>
}

export interface EventRecorder {
  /**
   * Records the event, and enqueues its webhook, in `executor`: the caller's transaction, so that both stand
   * or fall with the change they record; or, given the database, a transaction of their own.
   */
  record(executor: Db, event: NewEvent): Promise<SecurityEvent>
}

/** A recorder bound to one transaction: what a unit of work's store holds. */
export interface EventWriter {
  record(event: NewEvent): Promise<SecurityEvent>
}

export function createEventRecorder({
  outbox,
  clock,
  onRecorded = () => {},
}: {
  outbox: EventOutbox
  clock: Clock
  /**
   * Told of each event once written (the metrics count logins and reuse from them). A transaction that rolls
   * back after the write still counted it: rare, and a count, not a record.
   */
  onRecorded?: (type: string, detail: unknown) => void
}): EventRecorder {
  return {
    record(executor, { type, context, userId, sessionId, detail }) {
      const event: SecurityEvent = {
        id: newId(),
        type,
        at: epochSeconds(clock),
        actor: context.actor,
        userId: userId ?? null,
        sessionId: sessionId ?? null,
        ...storedClient(context),
        detail: (detail ?? {}) as Record<string, unknown>,
      }
      return inTransaction(executor, async (trx) => {
        await createEventRepository(trx).insert(event)
        await outbox.enqueue(trx, { id: event.id, type, timestamp: event.at, data: eventResponse(event) })
        onRecorded(type, event.detail)
        return event
      })
    },
  }
}

export function bindRecorder(recorder: EventRecorder, executor: Db): EventWriter {
  return { record: (event) => recorder.record(executor, event) }
}

/**
 * The stand-in for a name typed at login that no account has: people type passwords into the username field,
 * so the name is never kept. An HMAC under a server secret, so that nobody without the secret can test
 * guesses against it; attempts at one name still share one value. 128 bits, base64url.
 */
export function createNameHasher(key: Buffer): (name: string) => string {
  return (name) =>
    createHmac('sha256', key).update('tessera attempted name\0').update(name).digest('base64url').slice(0, 22)
}
