// Every HTTP request observed once, when its answer is sent: by route template (the declared `/users/:id`,
// never the path asked for, so that the number of series stays bounded), method and status, with the time
// Fastify measured. Requests no route matched share the one label `unmatched`.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { MetricsRegistry } from './metrics.ts'

type Observe = (request: FastifyRequest, reply: FastifyReply, done: () => void) => void

// A request no route serves may carry any of the few dozen methods Node's parser knows (PROPFIND, MKCOL...):
// those beyond the API's share one label, so that a client cannot add series with them.
const LABELLED_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const methodLabel = (method: string) => (LABELLED_METHODS.has(method) ? method : 'other')

export function observeRequests(app: FastifyInstance, { httpRequests }: MetricsRegistry): void {
  // The hot path: each route keeps its labelled series by status, so that a request costs a map lookup and
  // prom-client's observe, not the building and checking of a label set.
  const observer = (route: string, method: string | undefined): Observe => {
    const byStatus = new Map<number, { observe(seconds: number): void }>()
    return (request, reply, done) => {
      const status = reply.statusCode
      let series = byStatus.get(status)
      if (series === undefined) {
        series = httpRequests.labels(route, method ?? methodLabel(request.method), String(status))
        // A route of several methods is rare (plugins' HEAD and GET): its series are not kept.
        if (method !== undefined) byStatus.set(status, series)
      }
      series.observe(reply.elapsedTime / 1000)
      done()
    }
  }
  app.addHook('onRoute', (route: RouteOptions) => {
    const observe = observer(route.url, typeof route.method === 'string' ? route.method : undefined)
    route.onResponse = [observe, ...(route.onResponse ? [route.onResponse].flat() : [])]
  })
  // The not-found handler has no route to hang a hook on: it takes the instance's hooks.
  const unmatched = observer('unmatched', undefined)
  app.addHook('onResponse', (request, reply, done) => {
    if (request.is404) unmatched(request, reply, done)
    else done()
  })
}
