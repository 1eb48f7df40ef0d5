// `tessera serve`: the HTTP server from the sources; `npm start` runs the same serve() from the production
// build (bin/start.js, scripts/build.ts).
import { availableParallelism } from 'node:os'
import { SETTINGS } from '../config/config.schema.ts'
import { allowedValues } from '../config/setting.ts'
import { type Command, parseCommandArgs, UsageError } from './command.ts'

const WORKERS = SETTINGS.WORKERS

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Start the HTTP server',
  help: `Usage: tessera serve [--workers N]

Applies pending database migrations, then serves the API on HOST:PORT (${SETTINGS.HOST.default}:${SETTINGS.PORT.default} unless set).
Stops gracefully on SIGTERM or Ctrl-C, finishing the requests in flight.

Options:
  --workers N   Run N server processes sharing the port (node:cluster); "auto" is one per core.
                Defaults to WORKERS (${WORKERS.default}). With more than one, set REDIS_URL (docs/deployment.md).

Configure it with environment variables or a .env file in the working directory: HOST, PORT,
PUBLIC_URL, DATABASE_URL, JWT_ALGORITHM, LOG_LEVEL, ... (README, "Configuration").

Signing key: outside production, one is generated on first start when none is configured or stored.
With NODE_ENV=production none is ever generated: the server refuses to start unless a key is configured
(JWT_SECRET for HS256/384/512, JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE for the others) or a key of
JWT_ALGORITHM is stored in the database (\`tessera keys rotate\` makes one).
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
  if (!/^\d+$/.test(value) || Number(value) < WORKERS.min || Number(value) > WORKERS.max) {
    throw new UsageError(`--workers must be ${allowedValues(WORKERS)}, or auto; got "${value}"`, 'serve')
  }
  return Number(value)
}
