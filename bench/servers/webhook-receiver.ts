// The webhook receiver of the events section: answers every POST 204 at once and counts them; GET /count answers
// how many it took. Reports its port and Node's version over IPC, as the other servers do. The bench pins it to
// the load generator's cores, so that the server under test pays only for sending.
import { createServer } from 'node:http'

let received = 0
const server = createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/count') {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received }))
    return
  }
  request.resume().once('end', () => {
    received++
    response.writeHead(204).end()
  })
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening on a TCP port')
  process.once('disconnect', () => process.exit(0))
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stop') server.close(() => process.exit(0))
  })
  process.send?.({ type: 'listening', port: address.port, node: process.version })
})
