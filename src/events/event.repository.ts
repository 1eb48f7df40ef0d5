// Reads and writes the event log. Events are only ever inserted, read and, past their retention, deleted: no
// statement here updates one. Returns domain objects, never rows.
import type { Selectable } from 'kysely'
import type { Db, EventsTable } from '../db/database.ts'
import type { Actor, SecurityEvent } from './event.ts'
import type { EventType } from './event-types.ts'

export type EventFilter = {
  userId?: string | undefined
  type?: EventType | undefined
  /** Epoch seconds, inclusive. */
  since?: number | undefined
  /** Epoch seconds, exclusive. */
  until?: number | undefined
}

export type EventRange =
  /** Newest first, older than the event `before` when given (a page cursor). */
  | { order: 'newest'; before?: string | undefined; limit: number }
  /** Oldest first, newer than the id `after` (what `tessera events tail` polls). */
  | { order: 'oldest'; after: string; limit: number }

export interface EventRepository {
  insert(event: SecurityEvent): Promise<void>
  list(filter: EventFilter, range: EventRange): Promise<SecurityEvent[]>
  /** Deletes events recorded before `before` (epoch seconds), a batch at a time; returns how many. */
  purge(before: number): Promise<number>
}

type Row = Selectable<EventsTable>

// A batch deletes at most this many rows, so that purging a large backlog never holds locks for long.
const PURGE_BATCH = 5000

function toEvent(row: Row): SecurityEvent {
  const actor = (
    row.actor_id === null ? { kind: row.actor_kind } : { kind: row.actor_kind, id: row.actor_id }
  ) as Actor
  return {
    id: row.id,
    type: row.type as EventType,
    at: Number(row.at),
    actor,
    userId: row.user_id,
    sessionId: row.session_id,
    ip: row.ip,
    userAgent: row.user_agent,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  }
}

export function createEventRepository(db: Db): EventRepository {
  return {
    async insert(event) {
      await db
        .insertInto('events')
        .values({
          id: event.id,
          type: event.type,
          at: event.at,
          actor_kind: event.actor.kind,
          actor_id: 'id' in event.actor ? event.actor.id : null,
          user_id: event.userId,
          session_id: event.sessionId,
          ip: event.ip,
          user_agent: event.userAgent,
          detail: JSON.stringify(event.detail),
        })
        .execute()
    },

    async list(filter, range) {
      let query = db.selectFrom('events').selectAll().limit(range.limit)
      if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId)
      if (filter.type !== undefined) query = query.where('type', '=', filter.type)
      if (filter.since !== undefined) query = query.where('at', '>=', filter.since)
      if (filter.until !== undefined) query = query.where('at', '<', filter.until)
      if (range.order === 'newest') {
        if (range.before !== undefined) query = query.where('id', '<', range.before)
        query = query.orderBy('id', 'desc')
      } else {
        query = query.where('id', '>', range.after).orderBy('id', 'asc')
      }
      return (await query.execute()).map(toEvent)
    },

    async purge(before) {
      let total = 0
      for (;;) {
        const batch = db.selectFrom('events').select('id').where('at', '<', before).limit(PURGE_BATCH)
        const result = await db.deleteFrom('events').where('id', 'in', batch).executeTakeFirst()
        const deleted = Number(result.numDeletedRows)
        total += deleted
        if (deleted < PURGE_BATCH) return total
      }
    },
  }
}
