// `tessera user list`: the users, oldest first, as a table for a terminal.
import { isoTime } from '../lib/clock.ts'
import type { User } from '../users/user.repository.ts'
import { type Command, parseCommandArgs, UsageError, withDeps, writeLine } from './command.ts'

const NAME = 'user list'
const DEFAULT_LIMIT = 100

function table(users: User[]): string[] {
  const rows = users.map((u) => [
    u.id,
    u.username,
    `${u.firstName} ${u.lastName}`,
    u.roles.join(','),
    u.disabled ? 'yes' : 'no',
    isoTime(u.createdAt).replace(/\.\d{3}Z$/, 'Z'),
  ])
  const all = [['ID', 'USERNAME', 'NAME', 'ROLES', 'DISABLED', 'CREATED'], ...rows]
  const widths = all[0]?.map((_, column) => Math.max(...all.map((row) => row[column]?.length ?? 0))) ?? []
  return all.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd(),
  )
}

export const userListCommand: Command = {
  name: NAME,
  summary: 'List users',
  help: `Usage: tessera user list [--limit N]

Prints the users, oldest first: id, username, name, roles, whether disabled, and when created (UTC).

  --limit N   show at most N users (default ${DEFAULT_LIMIT})
`,
  async run(args, io) {
    const { values } = parseCommandArgs(NAME, args, { limit: { type: 'string' } })
    const limitText = values.limit ?? String(DEFAULT_LIMIT)
    const limit = Number(limitText)
    if (!/^\d+$/.test(limitText) || limit < 1 || !Number.isSafeInteger(limit)) {
      throw new UsageError(`--limit must be a whole number of at least 1; got "${limitText}"`, NAME)
    }
    return withDeps(io.env, async ({ services }) => {
      const { users, nextCursor } = await services.users.list({ limit })
      if (users.length === 0)
        writeLine(io.stdout, 'No users yet. Create one with: tessera user create <username>')
      else for (const line of table(users)) writeLine(io.stdout, line)
      if (nextCursor) writeLine(io.stderr, `(showing the first ${limit}; there are more: raise --limit)`)
      return 0
    })
  },
}
