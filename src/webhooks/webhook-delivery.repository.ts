// Reads and writes the webhook outbox (decision 0013). A sender claims due deliveries with one UPDATE that
// takes a lease (on PostgreSQL over rows locked with SKIP LOCKED, so that instances claiming at once take
// different rows); every later write about an attempt is a compare-and-set on that lease, so a sender whose
// lease ran out, and whose delivery another took over, changes nothing.
import { PostgresAdapter, type Selectable } from 'kysely'
import type { Db, WebhookDeliveriesTable } from '../db/database.ts'

export const DELIVERY_STATUSES = ['pending', 'delivered', 'dead'] as const
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number]

export type WebhookDelivery = {
  id: string
  endpoint: string
  type: string
  status: DeliveryStatus
  /** Attempts made (or under way); a dead delivery revived starts again from 0. */
  attempts: number
  nextAttemptAt: number
  lastAttemptAt: number | null
  lastError: string | null
  createdAt: number
  deliveredAt: number | null
  expiresAt: number | null
}

export type NewDelivery = Pick<WebhookDelivery, 'id' | 'endpoint' | 'type' | 'createdAt' | 'expiresAt'> & {
  payload: string
}

/** A delivery a sender holds until `lease` (epoch seconds), with the body to send. */
export type Claim = { delivery: WebhookDelivery; payload: string; lease: number }

/** What `tessera webhooks retry` did: made it due now, or why it could not. */
export type RetryOutcome = 'revived' | 'due_now' | 'delivered' | 'expired' | 'not_found'

export interface WebhookDeliveryRepository {
  /**
   * Claims up to `limit` deliveries to `endpoints` that are due at `now`, unexpired and held by no live lease:
   * each gets the lease `leaseUntil` and one more attempt counted.
   */
  claimDue(endpoints: readonly string[], now: number, leaseUntil: number, limit: number): Promise<Claim[]>
  /** False when the lease was lost (another sender took the delivery over). */
  markDelivered(claim: Claim, now: number): Promise<boolean>
  /** Records a failed attempt: due again at `retryAt`, or dead when it is null. */
  markFailed(claim: Claim, error: string, retryAt: number | null): Promise<boolean>
  /** Gives a claim back unattempted (a sender stopping mid-request): due at once for any sender. */
  release(claim: Claim): Promise<boolean>
  /** The earliest time a pending, unexpired delivery to `endpoints` can be claimed, if there is one. */
  nextDueAt(endpoints: readonly string[], now: number): Promise<number | undefined>
  /** Ends the pending deliveries whose message expired, erasing their payloads; returns how many. */
  expire(now: number): Promise<number>
  /** Deletes delivered and dead deliveries enqueued before `before`; returns how many. */
  purge(before: number): Promise<number>
  /** How many deliveries wait (pending) and were given up on (dead): the outbox's backlog, for the metrics. */
  countBacklog(): Promise<{ pending: number; dead: number }>
  /** Newest first, from the one before `before` (an id) when given. */
  list(options: {
    status?: DeliveryStatus | undefined
    limit: number
    before?: string | undefined
  }): Promise<WebhookDelivery[]>
  findById(id: string): Promise<WebhookDelivery | undefined>
  /** Makes a pending delivery due now, or a dead one pending again with a fresh round of attempts. */
  retry(id: string, now: number): Promise<RetryOutcome>
  /** Revives every dead delivery that has not expired; returns how many. */
  retryAllDead(now: number): Promise<number>
}

type Row = Omit<Selectable<WebhookDeliveriesTable>, 'payload' | 'locked_until'>

const COLUMNS = [
  'id',
  'endpoint',
  'type',
  'status',
  'attempts',
  'next_attempt_at',
  'last_attempt_at',
  'last_error',
  'created_at',
  'delivered_at',
  'expires_at',
] as const

const nullableNumber = (value: number | null) => (value === null ? null : Number(value))

function toDelivery(row: Row): WebhookDelivery {
  return {
    id: row.id,
    endpoint: row.endpoint,
    type: row.type,
    status: row.status,
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    lastAttemptAt: nullableNumber(row.last_attempt_at),
    lastError: row.last_error,
    createdAt: Number(row.created_at),
    deliveredAt: nullableNumber(row.delivered_at),
    expiresAt: nullableNumber(row.expires_at),
  }
}

/** Writes new deliveries with `db`, which is the transaction of the change they report. */
export async function insertDeliveries(db: Db, deliveries: readonly NewDelivery[]): Promise<void> {
  if (deliveries.length === 0) return
  await db
    .insertInto('webhook_deliveries')
    .values(
      deliveries.map((delivery) => ({
        id: delivery.id,
        endpoint: delivery.endpoint,
        type: delivery.type,
        payload: delivery.payload,
        status: 'pending' as const,
        attempts: 0,
        next_attempt_at: delivery.createdAt,
        created_at: delivery.createdAt,
        expires_at: delivery.expiresAt,
      })),
    )
    .execute()
}

export function createWebhookDeliveryRepository(db: Db): WebhookDeliveryRepository {
  // SQLite has one writer at a time: its UPDATE is atomic without row locks (and has no FOR UPDATE).
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter
  const changed = (result: { numUpdatedRows: bigint }) => result.numUpdatedRows > 0n
  // Ownership: the lease this sender took, on a delivery still pending.
  const held = (claim: Claim) =>
    db
      .updateTable('webhook_deliveries')
      .where('id', '=', claim.delivery.id)
      .where('status', '=', 'pending')
      .where('locked_until', '=', claim.lease)
  // A message that expires holds a secret (a reset link): not kept once it is done with.
  const payloadWhenDone = (claim: Claim) => (claim.delivery.expiresAt === null ? claim.payload : '')
  const findById = async (id: string) => {
    const row = await db
      .selectFrom('webhook_deliveries')
      .select(COLUMNS)
      .where('id', '=', id)
      .executeTakeFirst()
    return row && toDelivery(row)
  }

  return {
    async claimDue(endpoints, now, leaseUntil, limit) {
      if (endpoints.length === 0) return []
      let due = db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('status', '=', 'pending')
        .where('endpoint', 'in', endpoints)
        .where('next_attempt_at', '<=', now)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .orderBy('next_attempt_at')
        .limit(limit)
      if (postgres) due = due.forUpdate().skipLocked()
      const rows = await db
        .updateTable('webhook_deliveries')
        .set((eb) => ({ locked_until: leaseUntil, attempts: eb('attempts', '+', 1), last_attempt_at: now }))
        .where('id', 'in', due)
        .returning([...COLUMNS, 'payload'])
        .execute()
      return rows.map((row) => ({ delivery: toDelivery(row), payload: row.payload, lease: leaseUntil }))
    },

    async markDelivered(claim, now) {
      const result = await held(claim)
        .set({
          status: 'delivered',
          delivered_at: now,
          locked_until: null,
          last_error: null,
          payload: payloadWhenDone(claim),
        })
        .executeTakeFirst()
      return changed(result)
    },

    async markFailed(claim, error, retryAt) {
      const result = await held(claim)
        .set(
          retryAt === null
            ? { status: 'dead', locked_until: null, last_error: error, payload: payloadWhenDone(claim) }
            : { next_attempt_at: retryAt, locked_until: null, last_error: error },
        )
        .executeTakeFirst()
      return changed(result)
    },

    async release(claim) {
      const result = await held(claim)
        .set((eb) => ({ locked_until: null, attempts: eb('attempts', '-', 1) }))
        .executeTakeFirst()
      return changed(result)
    },

    async nextDueAt(endpoints, now) {
      if (endpoints.length === 0) return undefined
      // A delivery under a lease is due again, at the earliest, when its lease ends.
      const row = await db
        .selectFrom('webhook_deliveries')
        .select((eb) =>
          eb.fn
            .min(
              eb
                .case()
                .when('locked_until', '>', eb.ref('next_attempt_at'))
                .then(eb.ref('locked_until'))
                .else(eb.ref('next_attempt_at'))
                .end(),
            )
            .as('due'),
        )
        .where('status', '=', 'pending')
        .where('endpoint', 'in', endpoints)
        // An expired one is never claimed: it would look due for ever, until expire() ends it.
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirst()
      return row?.due === null || row?.due === undefined ? undefined : Number(row.due)
    },

    async expire(now) {
      const result = await db
        .updateTable('webhook_deliveries')
        .set({ status: 'dead', payload: '', last_error: 'expired before it could be delivered' })
        .where('status', '=', 'pending')
        .where('expires_at', '<=', now)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
        .executeTakeFirst()
      return Number(result.numUpdatedRows)
    },

    async purge(before) {
      const result = await db
        .deleteFrom('webhook_deliveries')
        .where('status', 'in', ['delivered', 'dead'])
        .where('created_at', '<', before)
        .executeTakeFirst()
      return Number(result.numDeletedRows)
    },

    async countBacklog() {
      // Counted on the (status, id) index; delivered rows, the many, are not read.
      const rows = await db
        .selectFrom('webhook_deliveries')
        .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
        .where('status', 'in', ['pending', 'dead'])
        .groupBy('status')
        .execute()
      const count = (status: string) => Number(rows.find((row) => row.status === status)?.count ?? 0)
      return { pending: count('pending'), dead: count('dead') }
    },

    async list({ status, limit, before }) {
      let query = db.selectFrom('webhook_deliveries').select(COLUMNS).orderBy('id', 'desc').limit(limit)
      if (status !== undefined) query = query.where('status', '=', status)
      if (before !== undefined) query = query.where('id', '<', before)
      return (await query.execute()).map(toDelivery)
    },

    findById,

    async retry(id, now) {
      const unexpired = db
        .updateTable('webhook_deliveries')
        .where('id', '=', id)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      const revived = await unexpired
        .set({ status: 'pending', attempts: 0, next_attempt_at: now, locked_until: null })
        .where('status', '=', 'dead')
        .executeTakeFirst()
      if (changed(revived)) return 'revived'
      // A pending one may be under a lease (being sent): its sender records the outcome.
      const hurried = await unexpired
        .set({ next_attempt_at: now })
        .where('status', '=', 'pending')
        .executeTakeFirst()
      if (changed(hurried)) return 'due_now'
      const delivery = await findById(id)
      if (delivery === undefined) return 'not_found'
      return delivery.status === 'delivered' ? 'delivered' : 'expired'
    },

    async retryAllDead(now) {
      const result = await db
        .updateTable('webhook_deliveries')
        .set({ status: 'pending', attempts: 0, next_attempt_at: now, locked_until: null })
        .where('status', '=', 'dead')
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirst()
      return Number(result.numUpdatedRows)
    },
  }
}
