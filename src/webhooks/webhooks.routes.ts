// GET /admin/webhooks/deliveries: the outbox as an admin sees it, newest first, a page at a time, to find what
// is pending or dead (`tessera webhooks retry <id>` revives one).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../http/responses.ts'
import { DeliveryPage, deliveryResponse, ListDeliveriesQuery } from './webhooks.schemas.ts'

export const webhooksRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { deliveries } = app.deps.webhooks

  app.get(
    '/admin/webhooks/deliveries',
    {
      config: { auth: { roles: ['admin'] } },
      schema: {
        operationId: 'listWebhookDeliveries',
        tags: ['admin'],
        summary: 'List webhook deliveries, newest first, optionally of one status, a page at a time',
        querystring: ListDeliveriesQuery,
        response: { 200: DeliveryPage, ...problems(400) },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query
      // One extra row tells whether there is a next page without a second query.
      const page = await deliveries.list({ status, limit: limit + 1, before: cursor })
      const onPage = page.slice(0, limit)
      return {
        deliveries: onPage.map(deliveryResponse),
        nextCursor: page.length > limit ? (onPage.at(-1)?.id ?? null) : null,
      }
    },
  )
}
