// Commands run as an operator runs them: a real process, to its end, with only the environment the test
// gives it (and PATH). process.execPath is the project's Node under `npm test`.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'

export const TESSERA_BIN = resolve(import.meta.dirname, '../../bin/tessera.js')

export type CommandRun = { code: number | null; stdout: string; stderr: string }

export type RunOptions = {
  cwd?: string
  env?: Record<string, string>
  /** Written to stdin, which is then closed (at once when there is none). */
  input?: string
  /** Past this, the process is killed (SIGTERM) and the run ends with what it printed. */
  timeoutMs?: number
}

/** `command ...args`, to its end. */
export async function runCommand(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<CommandRun> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', ...options.env },
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdin.end(options.input ?? '')
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr }
}

/** `tessera ...args` from this checkout. */
export const runTessera = (args: string[], options: RunOptions = {}) =>
  runCommand(process.execPath, [TESSERA_BIN, ...args], options)
