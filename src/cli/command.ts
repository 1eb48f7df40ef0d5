// What every command shares: the shape of a command, the streams and environment it is given, the two kinds
// of expected failure (a wrong command line, exit 2; a refused action, exit 1), and opening the dependencies.
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util'
import { loadConfig } from '../config/load-config.ts'
import type { Deps } from '../deps.ts'

export type Env = Readonly<Record<string, string | undefined>>

/** Passed in rather than read from `process`, so that a command's output and input are explicit. */
export type Io = {
  stdin: NodeJS.ReadStream
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  env: Env
}

export type Command = {
  /** As typed after `tessera`: "migrate", "user create". */
  name: string
  summary: string
  help: string
  /** Resolves to the exit code. */
  run(args: string[], io: Io): Promise<number>
}

/** The command line cannot be understood: exit 2, with a pointer to the command's --help. */
export class UsageError extends Error {
  readonly command: string | undefined
  constructor(message: string, command?: string) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

/** The command was understood but refused (a taken username, a short password): exit 1, no stack trace. */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

/**
 * parseArgs, strict, with the positional arguments counted: exactly `positionals` of them. Its own errors
 * become UsageErrors so that they print as a message, not a stack. (--help is handled before this, by main.)
 */
export function parseCommandArgs<const O extends ParseArgsOptionsConfig>(
  command: string,
  args: string[],
  options: O,
  positionals: readonly string[] = [],
) {
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
  >
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (error) {
    const code = (error as { code?: string }).code
    // Node's advice on positionals that start with "-" only confuses a mistyped option: cut it.
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, '')
    if (code?.startsWith('ERR_PARSE_ARGS_')) throw new UsageError(message, command)
    throw error
  }
  const missing = positionals[parsed.positionals.length]
  if (missing !== undefined) throw new UsageError(`Missing <${missing}>`, command)
  const extra = parsed.positionals[positionals.length]
  if (extra !== undefined) throw new UsageError(`Unexpected argument "${extra}"`, command)
  return parsed
}

/** Builds the dependencies (which applies pending migrations), runs `use`, and always closes the database. */
export async function withDeps<T>(env: Env, use: (deps: Deps) => Promise<T>): Promise<T> {
  // Imported on use, so that --help and a mistyped command answer without loading every service.
  const { createDeps } = await import('../deps.ts')
  // Only `serve` provisions signing keys; a `user list` must never rotate the key other services verify with.
  const deps = await createDeps(loadConfig(env), {}, { provisionKeys: false })
  try {
    return await use(deps)
  } finally {
    await deps.close()
  }
}

export function writeLine(stream: NodeJS.WritableStream, line = ''): void {
  stream.write(`${line}\n`)
}
