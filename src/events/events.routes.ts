// GET /admin/events: the security event log, filtered and paged, for admins. GET /auth/activity: the signed-in
// user's own recent security events, in the same shape.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError } from '../http/problem.ts'
import { problems } from '../http/responses.ts'
import {
  ActivityQuery,
  EventPage as EventPageSchema,
  eventResponse,
  ListEventsQuery,
} from './events.schemas.ts'
import type { EventPage } from './events.service.ts'

/**
 * An ISO date-time as epoch milliseconds. A leap second (`23:59:60`), which the date-time format allows and
 * Date.parse does not, counts as the last second of its minute.
 */
function parseTime(field: 'since' | 'until', time: string): number {
  const parsed = Date.parse(time.replace(/(T\d\d:\d\d:)60/i, '$159.999'))
  if (!Number.isFinite(parsed)) {
    throw new AppError('validation_failed', 'One or more fields are not valid; see errors.', {
      errors: [{ field: `/querystring/${field}`, message: 'is not a date-time this server can read' }],
    })
  }
  return parsed
}
/** The second a time falls in (`since`, inclusive), or the next (`until`). */
const floorSeconds = (time: string | undefined) =>
  time === undefined ? undefined : Math.floor(parseTime('since', time) / 1000)
const ceilSeconds = (time: string | undefined) =>
  time === undefined ? undefined : Math.ceil(parseTime('until', time) / 1000)

/** In a user's own activity, an admin who acted on them is named as an admin, without their id or client. */
const asSeenByTheUser = (event: ReturnType<typeof eventResponse>) =>
  event.actor.kind === 'admin'
    ? { ...event, actor: { kind: 'admin' as const }, ip: null, userAgent: null }
    : event

const pageResponse = (page: EventPage) => ({
  events: page.events.map(eventResponse),
  nextCursor: page.nextCursor,
})

export const eventsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { events } = app.deps.services

  app.get(
    '/admin/events',
    {
      config: { auth: { roles: ['admin'] } },
      schema: {
        operationId: 'listEvents',
        tags: ['admin'],
        summary: 'The security event log, newest first, a page at a time; filter by user, type and time',
        querystring: ListEventsQuery,
        response: { 200: EventPageSchema, ...problems(400) },
      },
    },
    async (request) => {
      const { user, type, since, until, limit, cursor } = request.query
      // Ids are stored in lower case; the uuid format lets either through.
      const userId = user?.toLowerCase()
      const filter = { userId, type, since: floorSeconds(since), until: ceilSeconds(until) }
      return pageResponse(await events.list(filter, { limit, cursor }))
    },
  )

  app.get(
    '/auth/activity',
    {
      schema: {
        operationId: 'listMyActivity',
        tags: ['auth'],
        summary: 'Your own recent security events (sign-ins, password changes, sessions ended), newest first',
        querystring: ActivityQuery,
        response: { 200: EventPageSchema, ...problems(400) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query
      const page = pageResponse(await events.list({ userId: request.auth.userId }, { limit, cursor }))
      return { ...page, events: page.events.map(asSeenByTheUser) }
    },
  )
}
