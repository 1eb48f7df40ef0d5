// Tessera as a real process, started the way a user starts it (src/server.ts, or `tessera serve` with
// arguments), with only the environment the test gives it; resolves once it listens.
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'

const SERVER = resolve(import.meta.dirname, '../../src/server.ts')
const BIN = resolve(import.meta.dirname, '../../bin/tessera.js')

export type ServerProcess = {
  child: ChildProcess
  url: string
  /** Everything it has printed so far, stdout and stderr. */
  output(): string
  /** SIGTERM, then its exit code; SIGKILL and 'killed' if it has not exited 20 s later. */
  stop(): Promise<number | null | 'killed'>
}

/**
 * `server`: another server.ts to run instead of this checkout's (the previous release's, in the upgrade test).
 * `nodeOptions`: given to node before the script (the V8 flags of `npm start`, in the production build's test).
 */
export function startServer(
  options: {
    cwd?: string
    env?: Record<string, string>
    serveArgs?: string[]
    server?: string
    nodeOptions?: string[]
  } = {},
): Promise<ServerProcess> {
  const script = options.serveArgs ? [BIN, 'serve', ...options.serveArgs] : [options.server ?? SERVER]
  const args = [...(options.nodeOptions ?? []), ...script]
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? process.cwd(),
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const stop = () =>
    new Promise<number | null | 'killed'>((resolveStop) => {
      child.removeAllListeners('exit')
      // Exited already, or killed by a signal (a test's SIGKILL): exitCode stays null then.
      if (child.exitCode !== null || child.signalCode !== null) return resolveStop(child.exitCode)
      const killer = setTimeout(() => {
        child.kill('SIGKILL')
        resolveStop('killed')
      }, 20_000)
      child.once('exit', (code) => {
        clearTimeout(killer)
        resolveStop(code)
      })
      child.kill('SIGTERM')
    })
  return new Promise((resolveStart, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match?.[1]) resolveStart({ child, url: match[1], output: () => output, stop })
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)))
  })
}
