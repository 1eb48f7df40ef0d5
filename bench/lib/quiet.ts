// Other load on the machine: a run during which other processes used more than OTHERS_CPU_LIMIT of a core is
// suspect. The rounds run such a run again (BENCH_RETRIES times at most), each time after waiting for a quiet
// second; the report counts those runs, and notes the ones that stayed noisy. So that a machine that is never
// quiet still ends the bench in reasonable time, the waits and reruns stop once 2 minutes went on them.
import { setTimeout as sleep } from 'node:timers/promises'
import { machineBusyMs } from './processes.ts'

/** Percent of one core. */
export const OTHERS_CPU_LIMIT = 10
const QUIET_WAIT_MS = 30_000
const NOISE_BUDGET_MS = 120_000

/** Runs done again because others were busy, and the time spent on waiting for quiet and on those runs. */
export const noise = { rerun: 0, spentMs: 0 }

/** Whether a disturbed run may still be done again: the budget is not spent yet. */
export const mayRerun = () => noise.spentMs < NOISE_BUDGET_MS

/**
 * Waits, at most 30 s (and within the budget), for a second in which the whole machine used less than
 * OTHERS_CPU_LIMIT of a core: the servers are idle between runs, so that is other processes.
 */
export async function waitForQuiet(): Promise<void> {
  const start = performance.now()
  const limit = Math.min(QUIET_WAIT_MS, Math.max(0, NOISE_BUDGET_MS - noise.spentMs))
  do {
    const before = machineBusyMs()
    await sleep(1_000)
    if ((machineBusyMs() - before) / 10 < OTHERS_CPU_LIMIT) break
  } while (performance.now() - start < limit)
  noise.spentMs += Math.max(0, performance.now() - start - 1_000)
}
