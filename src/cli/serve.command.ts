// `tessera serve`: the HTTP server, exactly as `npm start` runs it.
import { availableParallelism } from 'node:os'
import { type Command, parseCommandArgs, UsageError } from './command.ts'

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Start the HTTP server',
  help: `Usage: tessera serve [--workers N]

Applies pending database migrations, then serves the API on HOST:PORT (127.0.0.1:8000 unless set).
Stops gracefully on SIGTERM or Ctrl-C, finishing the requests in flight.

Options:
  --workers N   Run N server processes sharing the port (node:cluster); "auto" is one per core.
                Defaults to WORKERS (1). With more than one, set REDIS_URL (docs/deployment.md).

Configure it with environment variables or a .env file in the working directory: HOST, PORT,
PUBLIC_URL, DATABASE_URL, JWT_SECRET (required when NODE_ENV=production), LOG_LEVEL, ...
`,
  async run(args) {
    const { values } = parseCommandArgs(this.name, args, { workers: { type: 'string' } })
    const workers = values.workers === undefined ? undefined : parseWorkers(values.workers)
    // Imported here, not above: Fastify and its plugins are most of the start-up time of every command.
    // serve() reads the configuration itself, so the server has one entry point however it is started.
    const { serve } = await import('../server.ts')
    await serve({ ...(workers === undefined ? {} : { workers }) })
    return 0
  },
}

function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism()
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 256) {
    throw new UsageError(`--workers must be a whole number from 1 to 256, or auto; got "${value}"`, 'serve')
  }
  return Number(value)
}
