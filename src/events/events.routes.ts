// GET /admin/events: the security event log, filtered and paged, for admins. GET /auth/activity: the signed-in
// user's own recent security events, in the same shape.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../http/responses.ts'
import {
  ActivityQuery,
  EventPage as EventPageSchema,
  eventResponse,
  ListEventsQuery,
} from './events.schemas.ts'
import type { EventPage } from './events.service.ts'

/** An ISO date-time as epoch seconds: the second it falls in (`since`, inclusive), or the next (`until`). */
const floorSeconds = (time: string | undefined) =>
  time === undefined ? undefined : Math.floor(Date.parse(time) / 1000)
const ceilSeconds = (time: string | undefined) =>
  time === undefined ? undefined : Math.ceil(Date.parse(time) / 1000)

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
        tags: ['admin'],
        summary: 'The security event log, newest first, a page at a time; filter by user, type and time',
        querystring: ListEventsQuery,
        response: { 200: EventPageSchema, ...problems(400) },
      },
    },
    async (request) => {
      const { user, type, since, until, limit, cursor } = request.query
      const filter = { userId: user, type, since: floorSeconds(since), until: ceilSeconds(until) }
      return pageResponse(await events.list(filter, { limit, cursor }))
    },
  )

  app.get(
    '/auth/activity',
    {
      schema: {
        tags: ['auth'],
        summary: 'Your own recent security events (sign-ins, password changes, sessions ended), newest first',
        querystring: ActivityQuery,
        response: { 200: EventPageSchema, ...problems(400) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query
      return pageResponse(await events.list({ userId: request.auth.userId }, { limit, cursor }))
    },
  )
}
