// Loaded with `node --import` into a `tessera serve` process that the bench forks (the workers section), so that
// the bench can drive it as it drives bench-server.ts: over IPC, it reports `{ type: 'listening', port }` once
// every server process listens, and it turns `{ type: 'stop' }` into SIGTERM, the graceful shutdown an operator
// would ask for. Nothing in src/ knows of it.
// serve writes "Server listening at ..." only at LOG_LEVEL=info, which would also log every request we measure;
// and a cluster's primary starts listening with its first worker, before the others are ready. Hence Node's own
// events: the listen of a lone server, or each worker's 'listening' in the cluster's primary.
import cluster from 'node:cluster'
import { subscribe } from 'node:diagnostics_channel'
import type { Server } from 'node:net'

// Only the process the bench forked has its IPC channel; the workers load this file too, and leave it at that.
if (cluster.isPrimary && process.send) {
  let reported = false
  const report = (port: number) => {
    if (reported) return
    reported = true
    process.send?.({ type: 'listening', port })
  }
  const workers = () => Object.keys(cluster.workers ?? {}).length

  // One process (no --workers, or --workers 1): its HTTP server. With workers, the primary also listens, for
  // them, as soon as the first of them asks: that one is ignored.
  subscribe('tracing:net.server.listen:asyncEnd', (message) => {
    const address = (message as { server: Server }).server.address()
    if (workers() === 0 && address !== null && typeof address !== 'string') report(address.port)
  })

  // A cluster: its port once every worker listens on it.
  const listening = new Set<number>()
  cluster.on('listening', (worker, address) => {
    listening.add(worker.id)
    if (listening.size >= workers()) report(address.port)
  })

  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stop') process.kill(process.pid, 'SIGTERM')
  })
  // The bench died: shut down as asked to, not leaving a server behind.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'))
}
