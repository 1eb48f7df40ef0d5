// The servers under benchmark run in child processes, so that their memory and CPU can be read from /proc and the
// load generator does not share their event loop. This file starts and stops them and reads those numbers. A
// server may be several processes (a cluster's primary and its workers): its CPU and memory are those of the
// process and all its descendants.
import { type ChildProcess, fork, type Serializable } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'

export type ServerProcess = {
  name: string
  pid: number
  port: number
  /** Throws if the process has exited: a server that crashed mid-run must fail the bench, not skew it. */
  assertAlive(): void
  stop(): Promise<void>
}

type ChildMessage = { type: 'listening'; port: number } | { type: 'error'; message: string }

const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 5_000

export type StartOptions = {
  /** Sent to the child over IPC once it runs. */
  start?: Serializable
  execArgv?: string[]
  /** Command-line arguments of `file`. */
  args?: string[]
  /** The child's whole environment (by default, this process's). */
  env?: Record<string, string>
  cwd?: string
}

/**
 * Forks `file`, sends it `start` (if given) over IPC and waits for `{ type: 'listening', port }`. The child exits
 * when asked with `{ type: 'stop' }`, or when its IPC channel closes because this process died.
 */
export async function startServer(
  name: string,
  file: string,
  options: StartOptions = {},
): Promise<ServerProcess> {
  const child = fork(file, options.args ?? [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: options.execArgv ?? [],
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${name} did not start listening within ${START_TIMEOUT_MS / 1000} s`))
    }, START_TIMEOUT_MS)
    const fail = (error: Error) => {
      clearTimeout(timer)
      reject(error)
    }
    child.once('error', fail)
    child.once('exit', (code, signal) =>
      fail(new Error(`${name} exited before listening (${code ?? signal})`)),
    )
    child.on('message', (message: ChildMessage) => {
      clearTimeout(timer)
      if (message.type === 'listening') resolve(message.port)
      else {
        child.kill('SIGKILL')
        reject(new Error(`${name} failed to start: ${message.message}`))
      }
    })
    if (options.start !== undefined) child.send(options.start)
  })
  child.removeAllListeners('exit')
  let exited: string | undefined
  child.once('exit', (code, signal) => {
    exited = String(code ?? signal)
  })
  const pid = child.pid
  if (pid === undefined) throw new Error(`${name} has no pid`)
  return {
    name,
    pid,
    port,
    assertAlive() {
      if (exited !== undefined) throw new Error(`${name} (pid ${pid}) exited during the bench (${exited})`)
    },
    stop: () => stopChild(child),
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    // A graceful exit lets `--cpu-prof` write its profile; SIGKILL is the fallback.
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    if (child.connected) child.send({ type: 'stop' })
    else child.kill('SIGTERM')
  })
}

// utime and stime in /proc/<pid>/stat are in clock ticks: USER_HZ, which is 100 on every Linux Node supports.
const TICK_MS = 10

function cpuMsOf(statPath: string): number {
  const stat = readFileSync(statPath, 'utf8')
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

/** The process and all its descendants, e.g. a cluster's primary and its workers. */
export function processTree(pid: number): number[] {
  const pids = [pid]
  for (let i = 0; i < pids.length; i++) {
    const parent = pids[i] as number
    // Each thread lists the children it forked; Node forks from its main thread, but any thread may.
    for (const tid of readdirSync(`/proc/${parent}/task`)) {
      try {
        const children = readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8')
        pids.push(...children.split(' ').filter(Boolean).map(Number))
      } catch {
        // The thread ended while we were listing.
      }
    }
  }
  return pids
}

export type CpuSample = { processMs: number; mainThreadMs: number }

/** CPU time used so far by the processes, and by their main (event loop) threads, each summed over them. */
export function cpuTime(pids: number[]): CpuSample {
  let processMs = 0
  let mainThreadMs = 0
  for (const pid of pids) {
    processMs += cpuMsOf(`/proc/${pid}/stat`)
    mainThreadMs += cpuMsOf(`/proc/${pid}/task/${pid}/stat`)
  }
  return { processMs, mainThreadMs }
}

/**
 * CPU time used so far by every process whose command name is one of `names` (e.g. `postgres`): the servers a
 * Tessera process uses, which would otherwise count as other load on the machine.
 */
export function commandCpuMs(names: readonly string[]): number {
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) {
        total += cpuMsOf(`/proc/${entry}/stat`)
      }
    } catch {
      // The process ended while we were listing.
    }
  }
  return total
}

export type Memory = { peakMb: number; rssMb: number }

/** The RSS and peak RSS (VmHWM) of each of the process and its descendants, the process first. */
export function memoryByProcess(pid: number): Memory[] {
  return processTree(pid).map((each) => {
    const status = readFileSync(`/proc/${each}/status`, 'utf8')
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
    return { peakMb: kib('VmHWM') / 1024, rssMb: kib('VmRSS') / 1024 }
  })
}

/**
 * The RSS and peak RSS of the process and its descendants, each summed over them. For several processes the sum
 * of their peaks is an upper bound of their peak together, as they need not peak at the same moment.
 */
export function memory(pid: number): Memory {
  const each = memoryByProcess(pid)
  return {
    peakMb: each.reduce((sum, m) => sum + m.peakMb, 0),
    rssMb: each.reduce((sum, m) => sum + m.rssMb, 0),
  }
}

/** Resets VmHWM to the current RSS (Linux >= 4.0), so the next reading is the peak of the next phase only. */
export function resetPeakMemory(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** How many threads of each name the process has, e.g. { 'libuv-worker': 4 }. */
export function threadNames(pid: number): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      counts[name] = (counts[name] ?? 0) + 1
    } catch {
      // The thread ended while we were listing.
    }
  }
  return counts
}

/**
 * CPU time used so far by every process on the machine, all cores together (from the first line of /proc/stat).
 * Interrupt time is left out: it is mostly the loopback traffic of the bench itself, charged to no process.
 */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system] = line.trim().split(/\s+/).slice(1).map(Number)
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0)) * TICK_MS
}
