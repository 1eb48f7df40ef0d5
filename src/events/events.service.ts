// Reading the event log a page at a time, following it as it grows, and deleting what is past its retention
// (EVENTS_RETENTION_DAYS). Recording is the recorder's (event-recorder.ts), inside each change's transaction.
import { type Clock, epochSeconds } from '../lib/clock.ts'
import type { EventFilter, EventRepository } from './event.repository.ts'
import type { SecurityEvent } from './event.ts'

export type EventPage = { events: SecurityEvent[]; nextCursor: string | null }

export interface EventsService {
  /** Newest first; `cursor` is the `nextCursor` of the page before (with the same filter). */
  list(filter: EventFilter, page: { limit: number; cursor?: string | undefined }): Promise<EventPage>
  /**
   * Calls `onEvent` with each event recorded from now on, oldest first, polling every `intervalMs`, until
   * `signal` aborts. `onReady` is called once the first poll has run.
   */
  follow(
    filter: EventFilter,
    options: {
      intervalMs: number
      signal: AbortSignal
      onEvent: (event: SecurityEvent) => void
      onReady?: () => void
    },
  ): Promise<void>
  /** Deletes events older than the retention; 0 when events are kept for ever. Returns how many. */
  purge(): Promise<number>
}

const DAY_SECONDS = 86_400

/**
 * How far back a poll looks again: an id is drawn when its event is recorded, and its transaction may commit
 * after one with a later id has already been read. Events seen within this span are remembered, not repeated.
 */
const FOLLOW_LOOKBACK_MS = 30_000
const FOLLOW_BATCH = 500

/** The smallest UUID v7 of a millisecond: every id drawn at or after `ms` sorts after it. */
export function lowestIdAt(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`
}

/** The millisecond a UUID v7 was drawn at. */
function idTime(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done)
  })
}

export function createEventsService({
  events,
  clock,
  retentionDays,
}: {
  events: EventRepository
  clock: Clock
  retentionDays: number
}): EventsService {
  return {
    async list(filter, { limit, cursor }) {
      // One extra row tells whether there is a next page without a second query.
      const rows = await events.list(filter, { order: 'newest', before: cursor, limit: limit + 1 })
      const hasMore = rows.length > limit
      const page = hasMore ? rows.slice(0, limit) : rows
      return { events: page, nextCursor: hasMore ? (page.at(-1)?.id ?? null) : null }
    },

    async follow(filter, { intervalMs, signal, onEvent, onReady }) {
      // Ids hold the time they were drawn at (the real time, whatever clock the app was given).
      const start = Date.now()
      const seen = new Map<string, number>()
      let ready = false
      while (!signal.aborted) {
        const pollStartedAt = Date.now()
        let after = lowestIdAt(Math.max(start, pollStartedAt - FOLLOW_LOOKBACK_MS))
        for (;;) {
          const batch = await events.list(filter, { order: 'oldest', after, limit: FOLLOW_BATCH })
          for (const event of batch) {
            if (seen.has(event.id)) continue
            seen.set(event.id, idTime(event.id))
            onEvent(event)
          }
          const last = batch.at(-1)
          if (!last || batch.length < FOLLOW_BATCH) break
          after = last.id
        }
        // An id older than the look-back is never read again: it need not be remembered.
        for (const [id, at] of seen) if (at < pollStartedAt - FOLLOW_LOOKBACK_MS) seen.delete(id)
        if (!ready) {
          ready = true
          onReady?.()
        }
        await sleep(intervalMs, signal)
      }
    },

    async purge() {
      if (retentionDays === 0) return 0
      return events.purge(epochSeconds(clock) - retentionDays * DAY_SECONDS)
    },
  }
}
