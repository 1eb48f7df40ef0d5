// What a section is, what it is given (the context), and how the bench reads its settings from the environment.
// A section measures one thing and prints it: bench/sections/<name>.bench.ts, listed once in bench/run.ts.
import type { ServerProcess } from './processes.ts'
import type { TargetRow } from './report.ts'
import type { Wrk } from './wrk.ts'

/** Settings shared by the sections; a section reads its own with `setting` and `list` below. */
export type Settings = {
  /** The cores of the servers under test (`taskset -c`) and of wrk, as taskset takes them. */
  serverCpus: string
  loadCpus: string
  serverCores: number
  connections: number
  /** The rounds of the main requests (and of the login probe). */
  rounds: number
  durationSeconds: number
  warmupSeconds: number
  /** The shorter rounds of the sections after the requests and the logins. */
  sectionRounds: number
  sectionDurationSeconds: number
  sectionWarmupSeconds: number
  /** How many times a run disturbed by other processes is run again (./quiet.ts). */
  retries: number
  /** LOG_LEVEL and extra Node options of the Tessera processes. */
  logLevel: string
  serverExecArgv: string[]
}

export type Context = {
  settings: Settings
  wrk: Wrk
  /** Removed when the bench ends. */
  tempDir: string
  /** Bare Fastify, pinned to the server cores: a fresh process for each section. */
  bare: ServerProcess
  /** The script bare Fastify runs (built as Tessera's server is: ./build.ts). */
  bareFile: string
  /** Bare Fastify with one argon2id login route (servers/bare-login-server.ts), built alike: the floor of a login. */
  bareLoginFile: string
  /**
   * A Tessera process (bench/servers/tessera-server.ts) with the bench's environment and `env` on top, pinned to
   * the server cores (undefined takes a variable out). It is stopped when the section ends, if the section has not.
   */
  startTessera(name: string, env?: Record<string, string | undefined>): Promise<ServerProcess>
  /** Run when the bench ends, also after a failure (e.g. to drop a database schema). */
  onCleanup(cleanup: () => Promise<void>): void
  /** BENCH_VERBOSE=1: a line on stderr, e.g. for every run as it ends. */
  verbose(line: string): void
}

/** What a section prints: its lines, its rows of the targets table, and its notes. */
export type SectionReport = { lines: string[]; targets?: TargetRow[]; notes?: string[] }

export type Section<Result> = {
  /** The word of BENCH_SECTIONS. */
  name: string
  /** One line, for the report and the README. */
  description: string
  run(ctx: Context): Promise<Result>
  print(result: Result, ctx: Context): SectionReport
}

/** A section as the driver runs it, whatever its result. */
export type RunnableSection = Pick<Section<unknown>, 'name' | 'description'> & {
  execute(ctx: Context): Promise<SectionReport>
}

export function defineSection<Result>(section: Section<Result>): RunnableSection {
  return {
    name: section.name,
    description: section.description,
    execute: async (ctx) => section.print(await section.run(ctx), ctx),
  }
}

/** A whole number of at least `min` from the environment, or the fallback when unset. */
export function setting(name: string, fallback: number, min = 1): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min)
    throw new Error(`${name} must be a whole number >= ${min}; got "${raw}"`)
  return value
}

/** A comma-separated list of the allowed words from the environment, or the fallback when unset. */
export function list<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return [...fallback]
  const words = raw.split(',').map((word) => word.trim())
  const unknown = words.filter((word) => !(allowed as readonly string[]).includes(word))
  if (unknown.length > 0)
    throw new Error(`${name}: unknown ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`)
  return [...new Set(words as T[])]
}
