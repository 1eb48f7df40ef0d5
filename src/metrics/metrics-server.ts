// METRICS_PORT: a listener of its own that serves GET /metrics and nothing else, without a token, for a
// Prometheus that reaches it over a private interface (METRICS_HOST, 127.0.0.1 by default). A plain node:http
// server: none of the API's routes, hooks or limits apply to it, and the API's port never answers /metrics.
import { createServer, type Server } from 'node:http'
import { isServed, type Metrics } from './metrics.ts'

export type MetricsText = { contentType: string; text: string }

/** Listens; resolves with the function that closes it. A port it cannot listen on rejects, as a listen does. */
export async function serveMetrics(
  { host, port }: { host: string; port: number },
  render: () => Promise<MetricsText>,
  onError: (error: unknown) => void,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const path = request.url?.split('?')[0]
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('Not found: GET /metrics\n')
      return
    }
    render().then(
      ({ contentType, text }) =>
        response
          .writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
          .end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) => {
        onError(error)
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('Metrics unavailable\n')
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const bound = typeof address === 'object' && address ? address.port : port
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

type Log = { info(details: object, message: string): void; error(details: object, message: string): void }

/**
 * METRICS_PORT for a single process, serving its own registry; nothing when the port is unset. Resolves with
 * the function that closes it.
 */
export async function listenForMetrics(
  { port, host }: { port: number | undefined; host: string },
  metrics: Metrics,
  log: Log,
): Promise<() => Promise<void>> {
  if (port === undefined || !isServed(metrics)) return async () => {}
  const { registry } = metrics
  const listener = await serveMetrics(
    { host, port },
    async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
    (error) => log.error({ err: error }, 'metrics could not be collected'),
  )
  log.info({ url: listener.url }, 'metrics listening')
  return listener.close
}
