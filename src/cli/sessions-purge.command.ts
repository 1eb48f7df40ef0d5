// `tessera sessions purge`: deletes expired and revoked sessions now, as the server does periodically.
import { type Command, parseCommandArgs, withDeps, writeLine } from './command.ts'

export const sessionsPurgeCommand: Command = {
  name: 'sessions purge',
  summary: 'Delete expired and revoked sessions now',
  help: `Usage: tessera sessions purge

Deletes sessions that have expired (absolute or idle) or were revoked, with their refresh tokens, and says
how many. The server does the same every SESSION_PURGE_INTERVAL_SECONDS; running this while servers run,
or on several machines at once, is safe.
`,
  async run(args, io) {
    parseCommandArgs(this.name, args, {})
    return withDeps(io.env, async ({ services }) => {
      const purged = await services.sessions.purge()
      writeLine(io.stdout, `Purged ${purged} session${purged === 1 ? '' : 's'}.`)
      return 0
    })
  },
}
