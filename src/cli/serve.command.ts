// `tessera serve`: the HTTP server, exactly as `npm start` runs it.
import { type Command, parseCommandArgs } from './command.ts'

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Start the HTTP server',
  help: `Usage: tessera serve

Applies pending database migrations, then serves the API on HOST:PORT (127.0.0.1:8000 unless set).
Stops gracefully on SIGTERM or Ctrl-C, finishing the requests in flight.

Configure it with environment variables or a .env file in the working directory: HOST, PORT,
PUBLIC_URL, DATABASE_URL, JWT_SECRET (required when NODE_ENV=production), LOG_LEVEL, ...
`,
  async run(args) {
    parseCommandArgs(this.name, args, {})
    // Imported here, not above: Fastify and its plugins are most of the start-up time of every command.
    // serve() reads the configuration itself, so the server has one entry point however it is started.
    const { serve } = await import('../server.ts')
    await serve()
    return 0
  },
}
