// The notes under the bench report: everything that makes a number suspect or needs reading with care.
import type { LoadResult } from './load.ts'
import type { BenchResults } from './report.ts'
import { pct } from './table.ts'

const OTHERS_CPU_WARNING = 15

export function collectNotes(r: BenchResults, bare: LoadResult, pool: number): string[] {
  const notes: string[] = []
  const runs: [string, LoadResult[]][] = [
    ...[...r.requestRuns].map(([name, results]): [string, LoadResult[]] => [name, results]),
    ...r.loginSteps.map(({ connections, result }): [string, LoadResult[]] => [
      `logins, ${connections} conns`,
      [result],
    ]),
    ['/auth/me probe, idle', r.probeRounds.map((round) => round.idle)],
    ['/auth/me probe, storm', r.probeRounds.map((round) => round.storm)],
    ['login storm', r.probeRounds.map((round) => round.logins)],
  ]
  for (const [name, results] of runs) {
    const failures = results.flatMap((run) => run.failures)
    if (failures.length > 0) notes.push(`${name} had failures (${failures.join(', ')}): treat it as suspect.`)
    const others = Math.max(...results.map((run) => run.otherCpu))
    if (others > OTHERS_CPU_WARNING) {
      notes.push(
        `other processes used up to ${pct(others)} of a core during ${name}: rerun on a quiet machine.`,
      )
    }
  }
  if (bare.serverMainThreadCpu < 90) {
    notes.push(
      `bare Fastify's event loop was busy only ${pct(bare.serverMainThreadCpu)} of the time while autocannon used ` +
        `${pct(bare.clientCpu)}: the load generator, not the server, set its rate, so ratios against it flatter Tessera.`,
    )
  }
  if (bare.serverCpu + bare.clientCpu > r.params.cores * 100 * 0.85) {
    notes.push(
      `the server and autocannon together used ${pct(bare.serverCpu + bare.clientCpu)} of ${r.params.cores * 100}%: ` +
        'they share the cores, so absolute req/s are below those of a dedicated server; the ratios compare like with like.',
    )
  }
  if (!r.peakResets)
    notes.push('could not reset VmHWM between phases: each phase peak includes the earlier ones.')
  if (pool < r.params.cores) {
    notes.push(
      `the libuv pool has ${pool} threads for ${r.params.cores} cores: at most ${pool} hashes run at once.`,
    )
  }
  return notes
}
