// The admin view of the webhook outbox. The Delivery schema is the allow-list of what leaves the server: the
// payload (which may hold a reset link) and the lease are not in it.
import { Type } from 'typebox'
import { isoTime } from '../lib/clock.ts'
import type { WebhookDelivery } from './webhook-delivery.repository.ts'

const Time = Type.String({ format: 'date-time' })
const MaybeTime = Type.Union([Time, Type.Null()])

export const DeliveryStatus = Type.Union(
  [Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')],
  { description: 'pending (waiting or being sent), delivered, or dead (out of attempts, or expired)' },
)

export const Delivery = Type.Object(
  {
    id: Type.String({ description: 'The `webhook-id` header, the same on every attempt' }),
    endpoint: Type.String({ description: 'The configured endpoint: `events` (WEBHOOK_URL)' }),
    type: Type.String({ examples: ['user.registered'] }),
    status: DeliveryStatus,
    attempts: Type.Integer({ minimum: 0 }),
    nextAttemptAt: MaybeTime,
    lastAttemptAt: MaybeTime,
    lastError: Type.Union([Type.String(), Type.Null()], { examples: ['HTTP 503'] }),
    createdAt: Time,
    deliveredAt: MaybeTime,
    expiresAt: MaybeTime,
  },
  { title: 'WebhookDelivery' },
)

// `limit` may be left out; validation fills in its default.
export const ListDeliveriesQuery = Type.Object(
  {
    status: Type.Optional(DeliveryStatus),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Deliveries per page' }),
    cursor: Type.Optional(
      Type.String({ format: 'uuid', description: 'The `nextCursor` of the previous page' }),
    ),
  },
  { additionalProperties: false, required: [] },
)

export const DeliveryPage = Type.Object({
  deliveries: Type.Array(Delivery),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page' }),
})

export function deliveryResponse(delivery: WebhookDelivery) {
  const maybe = (time: number | null) => (time === null ? null : isoTime(time))
  return {
    id: delivery.id,
    endpoint: delivery.endpoint,
    type: delivery.type,
    status: delivery.status,
    attempts: delivery.attempts,
    nextAttemptAt: delivery.status === 'pending' ? isoTime(delivery.nextAttemptAt) : null,
    lastAttemptAt: maybe(delivery.lastAttemptAt),
    lastError: delivery.lastError,
    createdAt: isoTime(delivery.createdAt),
    deliveredAt: maybe(delivery.deliveredAt),
    expiresAt: maybe(delivery.expiresAt),
  }
}
