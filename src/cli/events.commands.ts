// `tessera events list | tail | purge`: the security event log for an operator: a filtered page of it, newest
// first; the events recorded from now on, as they come (polling); and the deletion of those past retention.
import type { Deps } from '../deps.ts'
import type { EventFilter } from '../events/event.repository.ts'
import type { SecurityEvent } from '../events/event.ts'
import { EVENT_TYPE_NAMES, type EventType } from '../events/event-types.ts'
import { eventResponse } from '../events/events.schemas.ts'
import { type Command, type Io, parseCommandArgs, UsageError, withDeps, writeLine } from './command.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DEFAULT_LIMIT = 50
const MAX_LIMIT = 1000
const DEFAULT_INTERVAL_MS = 1000

const FILTER_OPTIONS = {
  user: { type: 'string' },
  type: { type: 'string' },
  json: { type: 'boolean' },
} as const

const FILTER_HELP = `  --user USER    only events about this user: a username, or a user id (a deleted user's too)
  --type TYPE    only events of this type (${EVENT_TYPE_NAMES.slice(0, 3).join(', ')}, ...; README, "Security events")
  --json         one JSON object per line, as GET /admin/events shows each event`

function parseType(name: string, value: string | undefined): EventType | undefined {
  if (value === undefined) return undefined
  if (!(EVENT_TYPE_NAMES as string[]).includes(value)) {
    throw new UsageError(`--type must be one of: ${EVENT_TYPE_NAMES.join(', ')}; got "${value}"`, name)
  }
  return value as EventType
}

const DURATION = /^(\d+)([mhd])$/
const UNIT_SECONDS = { m: 60, h: 3600, d: 86_400 } as const

/** `--since`: an ISO date-time, or a duration back from now (`30m`, `12h`, `7d`); epoch seconds. */
function parseSince(name: string, value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined
  const duration = DURATION.exec(value)
  if (duration) {
    const seconds = Number(duration[1]) * UNIT_SECONDS[duration[2] as keyof typeof UNIT_SECONDS]
    return Math.floor(nowMs / 1000) - seconds
  }
  const ms = Date.parse(value)
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) {
    throw new UsageError(
      `--since must be an ISO date-time or a duration such as 30m, 12h or 7d; got "${value}"`,
      name,
    )
  }
  return Math.floor(ms / 1000)
}

/** `--user`: a user id as given, or the id of the user with that username. */
async function resolveUser(deps: Deps, value: string | undefined): Promise<string | undefined> {
  if (value === undefined || UUID.test(value)) return value?.toLowerCase()
  return (await deps.services.users.getByUsername(value)).id
}

function actorText(event: SecurityEvent): string {
  return 'id' in event.actor ? `${event.actor.kind}:${event.actor.id}` : event.actor.kind
}

const COLUMNS = ['AT', 'TYPE', 'ACTOR', 'USER', 'IP', 'DETAIL'] as const
const WIDTHS = [20, 22, 42, 36, 15]

function line(cells: readonly string[]): string {
  return cells
    .map((cell, i) => cell.padEnd(WIDTHS[i] ?? 0))
    .join('  ')
    .trimEnd()
}

function eventLine(event: SecurityEvent, json: boolean): string {
  if (json) return JSON.stringify(eventResponse(event))
  const view = eventResponse(event)
  return line([
    view.at.replace(/\.\d{3}Z$/, 'Z'),
    view.type,
    actorText(event),
    view.userId ?? '-',
    view.ip ?? '-',
    Object.keys(view.detail).length > 0 ? JSON.stringify(view.detail) : '',
  ])
}

export const eventsListCommand: Command = {
  name: 'events list',
  summary: 'List security events, newest first',
  help: `Usage: tessera events list [--user USER] [--type TYPE] [--since WHEN] [--limit N] [--json]

Prints the security events (sign-ins, failed logins, password changes, admin actions, key rotations...),
newest first: when (UTC), type, actor (user:<id>, admin:<id>, cli, system or anonymous), the user the event
is about, the client's address, and the event's detail.

${FILTER_HELP}
  --since WHEN   only events at or after WHEN: an ISO date-time (2026-05-01T00:00:00Z), or a duration
                 back from now: 30m, 12h, 7d
  --limit N      at most N events (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT})
`,
  async run(args, io) {
    const { values } = parseCommandArgs(this.name, args, {
      ...FILTER_OPTIONS,
      since: { type: 'string' },
      limit: { type: 'string' },
    })
    const type = parseType(this.name, values.type)
    const since = parseSince(this.name, values.since, Date.now())
    const limitText = values.limit ?? String(DEFAULT_LIMIT)
    const limit = Number(limitText)
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_LIMIT) {
      throw new UsageError(
        `--limit must be a whole number from 1 to ${MAX_LIMIT}; got "${limitText}"`,
        this.name,
      )
    }
    const json = values.json ?? false
    return withDeps(io.env, async (deps) => {
      const filter: EventFilter = { userId: await resolveUser(deps, values.user), type, since }
      const { events, nextCursor } = await deps.services.events.list(filter, { limit })
      if (!json && events.length > 0) writeLine(io.stdout, line(COLUMNS))
      for (const event of events) writeLine(io.stdout, eventLine(event, json))
      if (!json && events.length === 0) writeLine(io.stderr, 'No events match.')
      if (nextCursor) writeLine(io.stderr, `(showing the newest ${limit}; there are more: raise --limit)`)
      return 0
    })
  },
}

/** Aborts when the process is asked to stop (Ctrl-C, or SIGTERM from a supervisor). */
function untilStopped(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    },
  }
}

export const eventsTailCommand: Command = {
  name: 'events tail',
  summary: 'Print security events as they are recorded, until stopped',
  help: `Usage: tessera events tail [--user USER] [--type TYPE] [--interval-ms N] [--json]

Prints each security event recorded from now on, oldest first, as \`events list\` does, by looking for new
ones every --interval-ms (default ${DEFAULT_INTERVAL_MS}). Events recorded by every server on the database are
shown. Stops on Ctrl-C or SIGTERM.

${FILTER_HELP}
  --interval-ms N  how often to look, in milliseconds (100 to 60000)
`,
  async run(args, io: Io) {
    const { values } = parseCommandArgs(this.name, args, {
      ...FILTER_OPTIONS,
      'interval-ms': { type: 'string' },
    })
    const type = parseType(this.name, values.type)
    const intervalText = values['interval-ms'] ?? String(DEFAULT_INTERVAL_MS)
    const intervalMs = Number(intervalText)
    if (!/^\d+$/.test(intervalText) || intervalMs < 100 || intervalMs > 60_000) {
      throw new UsageError(
        `--interval-ms must be a whole number from 100 to 60000; got "${intervalText}"`,
        this.name,
      )
    }
    const json = values.json ?? false
    return withDeps(io.env, async (deps) => {
      const filter: EventFilter = { userId: await resolveUser(deps, values.user), type }
      const stopped = untilStopped()
      try {
        if (!json) writeLine(io.stdout, line(COLUMNS))
        await deps.services.events.follow(filter, {
          intervalMs,
          signal: stopped.signal,
          onEvent: (event) => writeLine(io.stdout, eventLine(event, json)),
          onReady: () => writeLine(io.stderr, 'Following security events; Ctrl-C to stop.'),
        })
      } finally {
        stopped.dispose()
      }
      return 0
    })
  },
}

export const eventsPurgeCommand: Command = {
  name: 'events purge',
  summary: 'Delete security events older than EVENTS_RETENTION_DAYS now',
  help: `Usage: tessera events purge

Deletes the security events that happened more than EVENTS_RETENTION_DAYS days ago (nothing when it is 0),
and says how many. The server does the same every SESSION_PURGE_INTERVAL_SECONDS; running this while
servers run, or on several machines at once, is safe.
`,
  async run(args, io) {
    parseCommandArgs(this.name, args, {})
    return withDeps(io.env, async ({ services }) => {
      const purged = await services.events.purge()
      writeLine(io.stdout, `Purged ${purged} event${purged === 1 ? '' : 's'}.`)
      return 0
    })
  },
}
