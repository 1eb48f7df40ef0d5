// Rounds: a warm-up run of each route (numbers dropped), then `rounds` rounds of all of them back to back. Each
// ratio is taken within a round, so that a machine that slows down or speeds up affects both sides of it alike;
// the report gives the median of the per-round ratios and their range. A run disturbed by other processes on the
// machine is run again (./quiet.ts).
import { mayRerun, noise, OTHERS_CPU_LIMIT, waitForQuiet } from './quiet.ts'
import { type LoadOptions, type LoadResult, runLoad, type Wrk } from './wrk.ts'

/** A route of a round: how to load it for a run of `seconds` (asked before every run), and what to do after. */
export type Route = {
  name: string
  load(seconds: number): LoadOptions | Promise<LoadOptions>
  after?(result: LoadResult): void
}

export type Runs = Map<string, LoadResult[]>

/** What the rounds need of the bench's context: the load generator, the retries, and where to log each run. */
export type RoundsContext = { wrk: Wrk; settings: { retries: number }; verbose(line: string): void }

export async function runRounds(
  ctx: RoundsContext,
  routes: Route[],
  timing: {
    rounds: number
    seconds: number
    warmupSeconds: number
    /** Run once between the warm-up runs and the first round. */
    afterWarmup?: () => Promise<void>
  },
): Promise<Runs> {
  const results: Runs = new Map(routes.map(({ name }) => [name, []]))
  const run = async (route: Route, seconds: number, label: string): Promise<LoadResult> => {
    for (let attempt = 0; ; attempt++) {
      const result = await runLoad(ctx.wrk, await route.load(seconds))
      route.after?.(result)
      ctx.verbose(
        `${label} ${route.name}, ${seconds} s: ${Math.round(result.requestsPerSecond)} req/s, p99 ` +
          `${result.p99.toFixed(2)} ms, server ${Math.round(result.serverCpu)}%, wrk ${Math.round(result.loadCpu)}%, ` +
          `others ${Math.round(result.otherCpu)}%${result.failures.length ? `, failures: ${result.failures.join(', ')}` : ''}`,
      )
      if (result.otherCpu <= OTHERS_CPU_LIMIT || attempt >= ctx.settings.retries || !mayRerun()) return result
      noise.rerun++
      noise.spentMs += seconds * 1000
      await waitForQuiet()
    }
  }
  for (const route of routes) await run(route, timing.warmupSeconds, 'warm-up')
  await timing.afterWarmup?.()
  for (let round = 0; round < timing.rounds; round++) {
    for (const route of routes)
      results.get(route.name)?.push(await run(route, timing.seconds, `round ${round + 1}`))
  }
  return results
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

export type RatioStats = { median: number; min: number; max: number }

/** The median of the per-round ratios of `runs` to `baseline`, and their range. */
export function roundRatios(
  runs: LoadResult[],
  baseline: LoadResult[],
  pick: (run: LoadResult) => number,
): RatioStats {
  const ratios = runs.map((run, i) => pick(run) / pick(baseline[i] as LoadResult))
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) }
}

export const rps = (run: LoadResult) => run.requestsPerSecond
export const p99Of = (run: LoadResult) => run.p99

/** Several runs of the same load as one: the median of each figure over the runs (the worst other load). */
export function combine(runs: LoadResult[]): LoadResult {
  const med = (pick: (run: LoadResult) => number) => median(runs.map(pick))
  return {
    requestsPerSecond: med(rps),
    p50: med((run) => run.p50),
    p90: med((run) => run.p90),
    p99: med(p99Of),
    failures: runs.flatMap((run) => run.failures),
    serverCpu: med((run) => run.serverCpu),
    serverMainThreadCpu: med((run) => run.serverMainThreadCpu),
    loadCpu: med((run) => run.loadCpu),
    databaseCpu: med((run) => run.databaseCpu),
    otherCpu: Math.max(...runs.map((run) => run.otherCpu)),
    positions: [],
  }
}
