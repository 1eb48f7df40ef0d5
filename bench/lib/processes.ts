// The servers under benchmark run in child processes pinned to the server cores (`taskset -c`), on the same node
// binary as the bench (process.execPath), so that their CPU and memory can be read from /proc and the load
// generator, pinned to the other cores, never competes with them. This file starts and stops them and reads
// those numbers. A server may be several processes: its CPU and memory are those of the process and its children.
import { type ChildProcess, type Serializable, spawn } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'

export type ServerProcess = {
  name: string
  pid: number
  port: number
  /** process.version in the server, as it reported it. */
  nodeVersion: string
  /** Throws if the process has exited: a server that crashed mid-run must fail the bench, not skew it. */
  assertAlive(): void
  /**
   * Full garbage collections in the server, run while it is idle (its node needs --expose-gc): the requests
   * section's afterWarmup says why.
   */
  collectGarbage(): Promise<void>
  stop(): Promise<void>
}

type ChildMessage = { type: 'listening'; port: number; node: string } | { type: 'error'; message: string }

/** How long a server may take to answer a `gc` message with `collected`. */
const COLLECT_TIMEOUT_MS = 10_000

const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 5_000

export type StartOptions = {
  /** The cores, as taskset takes them (`1`, `1-3`). */
  cpus: string
  /** Sent to the child over IPC once it runs. */
  start?: Serializable
  execArgv?: string[]
}

/** `taskset -c <cpus> <this node> [execArgv] <file> [args]`: every thread of the child inherits the affinity. */
export function spawnPinned(cpus: string, file: string, args: string[], execArgv: string[], ipc: boolean) {
  return spawn('taskset', ['-c', cpus, process.execPath, ...execArgv, file, ...args], {
    stdio: ipc ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
  })
}

/** Starts `file` pinned, sends it `start` over IPC and waits for `{ type: 'listening', port, node }`. */
export async function startServer(name: string, file: string, options: StartOptions): Promise<ServerProcess> {
  const child = spawnPinned(options.cpus, file, [], options.execArgv ?? [], true)
  const { port, node } = await new Promise<{ port: number; node: string }>((resolve, reject) => {
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
    // The first message says how the start went; later ones (`collected`) are for collectGarbage.
    child.once('message', (message: ChildMessage) => {
      clearTimeout(timer)
      if (message.type === 'listening') resolve(message)
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
  const pinned = affinity(pid)
  if (pinned.some((cpus) => cpus !== normalizeCpus(options.cpus))) {
    child.kill('SIGKILL')
    throw new Error(`${name}: taskset -c ${options.cpus} did not pin every thread (${pinned.join(' ')})`)
  }
  return {
    name,
    pid,
    port,
    nodeVersion: node,
    assertAlive() {
      if (exited !== undefined) throw new Error(`${name} (pid ${pid}) exited during the bench (${exited})`)
    },
    collectGarbage: () => collectIn(child, name),
    stop: () => stopChild(child),
  }
}

function collectIn(child: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage)
      reject(new Error(`${name} did not answer a gc message within ${COLLECT_TIMEOUT_MS / 1000} s`))
    }, COLLECT_TIMEOUT_MS)
    const onMessage = (message: { type?: string; message?: string }) => {
      if (message.type !== 'collected' && message.type !== 'gc-failed') return
      clearTimeout(timer)
      child.off('message', onMessage)
      if (message.type === 'collected') resolve()
      else reject(new Error(`${name} could not collect: ${message.message}`))
    }
    child.on('message', onMessage)
    child.send({ type: 'gc' })
  })
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

/** `0-1,3` as the sorted list of its cores, `0,1,3`: the form in which the bench compares core sets. */
export function normalizeCpus(list: string): string {
  const cpus = new Set<number>()
  for (const part of list.split(',').map((each) => each.trim())) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (!match) throw new Error(`not a CPU list: "${list}" (e.g. 1 or 1-3,5)`)
    const from = Number(match[1])
    for (let cpu = from; cpu <= Number(match[2] ?? from); cpu++) cpus.add(cpu)
  }
  return [...cpus].sort((a, b) => a - b).join(',')
}

/** Cpus_allowed_list of every thread of the process, normalized. */
export function affinity(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
      return [normalizeCpus(/^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? '')]
    } catch {
      return [] // The thread ended while we were listing.
    }
  })
}

// utime and stime in /proc/<pid>/stat are in clock ticks: USER_HZ, which is 100 on every Linux Node supports.
const TICK_MS = 10

/** Fields of /proc/.../stat after the command name, which is in parentheses and may contain spaces. */
function statFields(path: string): string[] {
  const stat = readFileSync(path, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

const cpuMsOf = (path: string) => {
  const fields = statFields(path)
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

/** CPU time of this process's children that have ended and been waited for (cutime + cstime). */
export function endedChildrenCpuMs(): number {
  const fields = statFields('/proc/self/stat')
  return (Number(fields[13]) + Number(fields[14])) * TICK_MS
}

/** CPU time of a running process, 0 once it is gone. */
export function processCpuMs(pid: number): number {
  try {
    return cpuMsOf(`/proc/${pid}/stat`)
  } catch {
    return 0
  }
}

/** The process and all its descendants. */
export function processTree(pid: number): number[] {
  const pids = [pid]
  for (let i = 0; i < pids.length; i++) {
    const parent = pids[i] as number
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

/** CPU time used so far by every process whose command name is one of `names` (e.g. `postgres`). */
export function commandCpuMs(names: readonly string[]): number {
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim()))
        total += cpuMsOf(`/proc/${entry}/stat`)
    } catch {
      // The process ended while we were listing.
    }
  }
  return total
}

/** A field of /proc/<pid>/status in kB, summed over the process and its descendants, in MB. */
function memoryMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const pattern = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm')
  return processTree(pid).reduce((sum, each) => {
    const status = readFileSync(`/proc/${each}/status`, 'utf8')
    return sum + Number(pattern.exec(status)?.[1] ?? Number.NaN) / 1024
  }, 0)
}

/** Peak RSS (VmHWM, over the process's whole life) summed over the process and its descendants, in MB. */
export const peakRssMb = (pid: number): number => memoryMb(pid, 'VmHWM')

/**
 * Starts a new peak: Linux resets VmHWM to the RSS of now when 5 is written to /proc/<pid>/clear_refs (the
 * process and its descendants), so that peakRssMb then measures what follows, not what the setup took.
 */
export function resetPeakRss(pid: number): void {
  for (const each of processTree(pid)) {
    try {
      writeFileSync(`/proc/${each}/clear_refs`, '5')
    } catch (error) {
      // A child that ended while we were listing has no peak left to count.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }
}

/** RSS now (VmRSS), summed over the process and its descendants, in MB. */
export const rssMb = (pid: number): number => memoryMb(pid, 'VmRSS')

/**
 * CPU time used so far by every process on the machine, all cores together (from the first line of /proc/stat).
 * Interrupt time is left out: it is mostly the loopback traffic of the bench itself, charged to no process.
 */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  const [user, nice, system] = line.trim().split(/\s+/).slice(1).map(Number)
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0)) * TICK_MS
}
