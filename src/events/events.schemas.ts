// The API's view of a security event (GET /admin/events, GET /auth/activity, and the `data` of a webhook), and
// the query strings that page through them. The Event schema is the allow-list of what leaves the server.
import { Type } from 'typebox'
import { isoTime } from '../lib/clock.ts'
import type { SecurityEvent } from './event.ts'
import { ACTOR_KINDS } from './event.ts'
import { EVENT_TYPE_NAMES, EventDetailSchema } from './event-types.ts'

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()])

export const EventTypeName = Type.Enum(EVENT_TYPE_NAMES, {
  type: 'string',
  description: 'A security event type (README, "Security events")',
})

export const Event = Type.Object(
  {
    id: Type.String({
      format: 'uuid',
      description: 'Time-ordered (UUID v7): a later event has a greater id',
    }),
    type: EventTypeName,
    at: Type.String({ format: 'date-time' }),
    actor: Type.Object({
      kind: Type.Enum([...ACTOR_KINDS], {
        type: 'string',
        description:
          '`user` on their own account, `admin` through an admin route, `cli`, `system` or `anonymous`',
      }),
      id: Type.Optional(
        Type.String({ format: 'uuid', description: 'The acting user, for `user` and `admin`' }),
      ),
    }),
    userId: Nullable(Type.String({ format: 'uuid', description: 'The user the event is about' })),
    sessionId: Nullable(Type.String({ format: 'uuid' })),
    ip: Nullable(Type.String()),
    userAgent: Nullable(Type.String()),
    detail: EventDetailSchema,
  },
  { title: 'SecurityEvent' },
)

export const EventPage = Type.Object({
  events: Type.Array(Event, { description: 'Newest first' }),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page' }),
})

const Page = {
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 50, description: 'Events per page' }),
  cursor: Type.Optional(
    Type.String({ format: 'uuid', description: 'The `nextCursor` of the previous page (same filters)' }),
  ),
}

export const ActivityQuery = Type.Object(Page, { additionalProperties: false, required: [] })

export const ListEventsQuery = Type.Object(
  {
    user: Type.Optional(Type.String({ format: 'uuid', description: 'Only events about this user' })),
    type: Type.Optional(EventTypeName),
    since: Type.Optional(
      Type.String({ format: 'date-time', description: 'Only events at or after this time' }),
    ),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'Only events before this time' })),
    ...Page,
  },
  { additionalProperties: false, required: [] },
)

/** The API's view of an event: the only way an event leaves the server (responses and webhooks). */
export function eventResponse(event: SecurityEvent) {
  return {
    id: event.id,
    type: event.type,
    at: isoTime(event.at),
    actor: 'id' in event.actor ? { kind: event.actor.kind, id: event.actor.id } : { kind: event.actor.kind },
    userId: event.userId,
    sessionId: event.sessionId,
    ip: event.ip,
    userAgent: event.userAgent,
    detail: event.detail,
  }
}
