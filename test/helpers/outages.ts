// Real outages for the failure tests: a TCP proxy in front of PostgreSQL that the test can make refuse or
// swallow connections, and a Redis server of the test's own, on its own port, that it can kill and restart.
import { type ChildProcess, spawn } from 'node:child_process'
import { connect, createServer, type Server, type Socket } from 'node:net'

export type ProxyMode = 'forward' | 'refuse' | 'blackhole'

export type TcpProxy = {
  port: number
  /** Every open connection is cut; new ones are forwarded, closed at once, or accepted and never answered. */
  setMode(mode: ProxyMode): void
  close(): Promise<void>
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'forward'
  const open = new Set<Socket>()
  const track = (socket: Socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    socket.on('error', () => socket.destroy())
  }
  const server: Server = createServer((client) => {
    track(client)
    if (mode === 'refuse') return client.destroy()
    if (mode === 'blackhole') return
    const upstream = connect(target)
    track(upstream)
    client.pipe(upstream).pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')
  return {
    port: address.port,
    setMode(next) {
      mode = next
      for (const socket of open) socket.destroy()
    },
    async close() {
      for (const socket of open) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export type OwnRedis = { url: string; start(): Promise<void>; kill(): Promise<void> }

/** A redis-server (from PATH) on a port of its own, keeping nothing on disk. */
export async function ownRedis(): Promise<OwnRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  return {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const started = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      )
      child = started
      await new Promise<void>((resolve, reject) => {
        let output = ''
        started.stdout?.on('data', (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes('Ready to accept connections')) resolve()
        })
        started.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
      })
    },
    async kill() {
      const running = child
      if (!running || running.exitCode !== null) return
      running.removeAllListeners('exit')
      await new Promise((resolve) => {
        running.once('exit', resolve)
        running.kill('SIGKILL')
      })
    },
  }
}
