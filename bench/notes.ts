// The notes under the bench report: everything that makes a number suspect or needs reading with care.
import { VERIFIED_TOKEN_CACHE_SIZE } from './chains.ts'
import type { LoadResult } from './load.ts'
import type { BenchResults } from './report.ts'
import { pct } from './table.ts'

const OTHERS_CPU_WARNING = 15

export function collectNotes(r: BenchResults, bare: LoadResult, pool: number): string[] {
  const notes: string[] = r.sectionFailures.map(
    (failure) => `a section failed and is missing from the report: ${failure}`,
  )
  const named = (prefix: string, runs: Map<string, LoadResult[]>) =>
    [...runs].map(([name, results]): [string, LoadResult[]] => [`${prefix}${name}`, results])
  const runs: [string, LoadResult[]][] = [...named('', r.requestRuns)]
  if (r.logins) {
    const { loginSteps, probeRounds } = r.logins
    runs.push(
      ...loginSteps.map(({ connections, result }): [string, LoadResult[]] => [
        `logins, ${connections} conns`,
        [result],
      ]),
      ['/auth/me probe, idle', probeRounds.map((round) => round.idle)],
      ['/auth/me probe, storm', probeRounds.map((round) => round.storm)],
      ['login storm', probeRounds.map((round) => round.logins)],
    )
  }
  if (r.sessions) runs.push(...named('sessions: ', r.sessions.runs))
  if (r.cacheOff) runs.push(...named('cache off: ', r.cacheOff.runs))
  if (r.postgres) runs.push(...named('PostgreSQL section: ', r.postgres.runs))
  for (const key of r.keys ?? []) runs.push(...named(`${key.algorithm}: `, key.runs))
  if (r.workers) runs.push(...named('workers: ', r.workers.runs))
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
  for (const key of r.keys ?? []) {
    const distinct = key.distinct
    if (!distinct) continue
    if (distinct.tokens <= VERIFIED_TOKEN_CACHE_SIZE) {
      notes.push(
        `${key.algorithm}: ${distinct.tokens} distinct tokens do not outnumber the ${VERIFIED_TOKEN_CACHE_SIZE} the server ` +
          'caches: the distinct-token runs hit the cache; raise BENCH_DISTINCT_TOKENS.',
      )
    } else if (distinct.nearRepeats > 0) {
      notes.push(
        `${key.algorithm}: ${distinct.nearRepeats} of ${distinct.responses} distinct-token responses came back within ` +
          `${VERIFIED_TOKEN_CACHE_SIZE} responses of their token's previous one, so may have been cache hits.`,
      )
    }
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
