// `tessera <command>`: finds the command, answers --help, and turns expected failures into one message and
// an exit status (2: the command line is not valid; 1: the command failed). Each command has its own file.

import { readProcessEnv } from '../config/load-config.ts'
import { AppError } from '../http/problem.ts'
import { isOperatorError } from '../start-errors.ts'
import { backupCommand } from './backup.command.ts'
import { CliError, type Command, type Io, UsageError, writeLine } from './command.ts'
import { eventsListCommand, eventsPurgeCommand, eventsTailCommand } from './events.commands.ts'
import { keysListCommand, keysPruneCommand, keysRotateCommand } from './keys.commands.ts'
import { keysResealCommand } from './keys-reseal.command.ts'
import { migrateCommand } from './migrate.command.ts'
import { openapiCommand } from './openapi.command.ts'
import { restoreCommand } from './restore.command.ts'
import { serveCommand } from './serve.command.ts'
import { sessionsPurgeCommand } from './sessions-purge.command.ts'
import {
  userDisableCommand,
  userEnableCommand,
  userGrantAdminCommand,
  userMfaResetCommand,
  userResetLinkCommand,
  userRevokeAdminCommand,
  userUnlockCommand,
} from './user-admin.commands.ts'
import { userCreateCommand } from './user-create.command.ts'
import { userImportCommand, usersImportCommand } from './user-import.command.ts'
import { userListCommand } from './user-list.command.ts'
import { webhooksListCommand, webhooksRetryCommand } from './webhooks.commands.ts'

const COMMANDS: readonly Command[] = [
  serveCommand,
  migrateCommand,
  backupCommand,
  restoreCommand,
  userCreateCommand,
  userListCommand,
  userImportCommand,
  usersImportCommand,
  userGrantAdminCommand,
  userRevokeAdminCommand,
  userEnableCommand,
  userDisableCommand,
  userResetLinkCommand,
  userUnlockCommand,
  userMfaResetCommand,
  sessionsPurgeCommand,
  keysRotateCommand,
  keysListCommand,
  keysPruneCommand,
  keysResealCommand,
  eventsListCommand,
  eventsTailCommand,
  eventsPurgeCommand,
  openapiCommand,
  webhooksListCommand,
  webhooksRetryCommand,
]

const NAME_WIDTH = Math.max(...COMMANDS.map((c) => c.name.length)) + 2

const list = (commands: readonly Command[]) =>
  commands.map((c) => `  ${c.name.padEnd(NAME_WIDTH)}${c.summary}`).join('\n')

const HELP = `Usage: tessera <command> [options]

Commands:
${list(COMMANDS)}

Run "tessera <command> --help" for the options of a command.

Settings are read from environment variables, over a .env file in the working directory:
DATABASE_URL, JWT_SECRET, HOST, PORT, LOG_LEVEL, ... (the full list is in src/config/config.schema.ts).
Exit status: 0 on success, 1 when the command fails, 2 when the command line is not valid.
`

/** Commands named with two words ("user create") form a group, which has help of its own. */
const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]))

const groupHelp = (group: string) => `Usage: tessera ${group} <command> [options]

Commands:
${list(COMMANDS.filter((c) => c.name.startsWith(`${group} `)))}

Run "tessera ${group} <command> --help" for the options of a command.
`

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h'

/** --help anywhere before a `--` terminator, so that it works whatever else is on the line. */
function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).some(isHelp)
}

async function dispatch(argv: string[], io: Io): Promise<number> {
  const [first, second] = argv
  if (first === undefined) {
    io.stderr.write(HELP)
    return 2
  }
  if (isHelp(first)) {
    io.stdout.write(HELP)
    return 0
  }
  if (first.startsWith('-')) throw new UsageError(`Unknown option "${first}"`)
  const group = GROUPS.has(first) ? first : undefined
  if (group && (second === undefined || isHelp(second))) {
    ;(second === undefined ? io.stderr : io.stdout).write(groupHelp(group))
    return second === undefined ? 2 : 0
  }
  const depth = group ? 2 : 1
  const name = argv.slice(0, depth).join(' ')
  const command = COMMANDS.find((c) => c.name === name)
  if (!command) throw new UsageError(`Unknown command "${name}"`, group)
  const args = argv.slice(depth)
  if (wantsHelp(args)) {
    io.stdout.write(command.help)
    return 0
  }
  return command.run(args, io)
}

/** Expected failures print one message; only a bug prints a stack trace. */
function report(error: unknown, io: Io): number {
  if (error instanceof UsageError) {
    writeLine(io.stderr, `tessera: ${error.message}`)
    writeLine(io.stderr, `Run "tessera ${error.command ? `${error.command} ` : ''}--help" for usage.`)
    return 2
  }
  if (error instanceof CliError || isOperatorError(error)) {
    writeLine(io.stderr, `tessera: ${error.message}`)
    return error instanceof CliError ? error.exitCode : 1
  }
  if (error instanceof AppError) {
    writeLine(io.stderr, `tessera: ${error.message}`)
    for (const e of error.errors ?? []) writeLine(io.stderr, `  - ${e.field}: ${e.message}`)
    return 1
  }
  writeLine(io.stderr, `tessera: unexpected error: ${error instanceof Error ? error.stack : String(error)}`)
  return 1
}

export async function main(argv: string[], io: Io): Promise<number> {
  try {
    return await dispatch(argv, io)
  } catch (error) {
    return report(error, io)
  }
}

/** Runs main on this process. An exit code rather than process.exit(), so that `serve` keeps listening. */
export async function cli(): Promise<void> {
  const io: Io = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: readProcessEnv(),
  }
  process.exitCode = await main(process.argv.slice(2), io)
}

if (import.meta.main) await cli()
