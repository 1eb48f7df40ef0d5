// The baseline: plain Fastify with its defaults and one GET route answering the same small JSON as the verify-only
// route, with a response schema as well, so that both serialize the same way. Reports its port and Node's version
// over IPC. The bench runs it on the same node binary as Tessera, pinned to the same cores.
import Fastify from 'fastify'
import { BENCH_RESPONSE, BenchResponse } from './bench-response.ts'
import { collectOnRequest } from './collect-on-request.ts'

const app = Fastify()
app.get('/bench/bare', { schema: { response: { 200: BenchResponse } } }, async () => BENCH_RESPONSE)
// PORT: the cold-start section picks the port (the process runs without IPC there).
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
const address = app.server.address()
if (address === null || typeof address === 'string') throw new Error('not listening on a TCP port')

process.once('disconnect', () => process.exit(0))
process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') void app.close().then(() => process.exit(0))
})
collectOnRequest()
process.send?.({ type: 'listening', port: address.port, node: process.version })
