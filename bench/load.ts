// One bounded autocannon run against a server process: throughput, latency percentiles from every response
// (autocannon's own histogram rounds to whole milliseconds), and who used the CPU meanwhile: the server (all its
// processes), the database servers it uses, this process (the load generator), and everything else on the
// machine, which would make the numbers suspect.
import autocannon, { type Client, type Options, type Result } from 'autocannon'
import { commandCpuMs, cpuTime, machineBusyMs, processTree, type ServerProcess } from './processes.ts'

export type LoadOptions = {
  server: ServerProcess
  path: string
  connections: number
  durationSeconds: number
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  /** Fixed overall rate in requests/s; without it, every connection sends its next request at once. */
  overallRate?: number
  /**
   * Called once for each connection of the run, with its index (0 to connections - 1, in every run), before its
   * first request: to give each connection requests of its own (see chains.ts).
   */
  setupClient?: (client: Client, index: number) => void
  /**
   * Command names of the database servers the server uses (`postgres`, `redis-server`): their CPU is reported
   * apart, not as other load on the machine.
   */
  databaseProcesses?: readonly string[]
}

export type LoadResult = {
  requestsPerSecond: number
  /** Milliseconds of every 2xx response, sorted. */
  latencies: Float64Array
  p50: number
  p99: number
  /** Non-2xx responses, connection errors and timeouts: any of them makes the numbers suspect. */
  failures: string[]
  /** Percent of one core, over the run. */
  serverCpu: number
  /** Summed over the server's processes: above 100% with several workers. */
  serverMainThreadCpu: number
  clientCpu: number
  /** CPU of the `databaseProcesses` (all of them on the machine, whoever they served); NaN without any. */
  databaseCpu: number
  /** CPU used by other processes on the machine during the run (percent of one core). */
  otherCpu: number
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

/** Several runs of the same load as one: medians of the per-run figures; percentiles over all responses. */
export function combine(runs: LoadResult[]): LoadResult {
  const all = new Float64Array(runs.reduce((n, run) => n + run.latencies.length, 0))
  let offset = 0
  for (const run of runs) {
    all.set(run.latencies, offset)
    offset += run.latencies.length
  }
  all.sort()
  const med = (pick: (run: LoadResult) => number) => median(runs.map(pick))
  return {
    requestsPerSecond: med((run) => run.requestsPerSecond),
    latencies: all,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    failures: runs.flatMap((run) => run.failures),
    serverCpu: med((run) => run.serverCpu),
    serverMainThreadCpu: med((run) => run.serverMainThreadCpu),
    clientCpu: med((run) => run.clientCpu),
    databaseCpu: med((run) => run.databaseCpu),
    otherCpu: Math.max(...runs.map((run) => run.otherCpu)),
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { server } = options
  const cannonOptions: Options = {
    url: `http://127.0.0.1:${server.port}${options.path}`,
    method: options.method ?? 'GET',
    connections: options.connections,
    duration: options.durationSeconds,
    timeout: 10,
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.body === undefined ? {} : { body: options.body }),
    // The rate limiter releases each connection's share at the start of every second, so its coordinated-
    // omission correction (which assumes evenly spaced requests) would invent latencies; we report what we saw.
    ...(options.overallRate ? { overallRate: options.overallRate, ignoreCoordinatedOmission: true } : {}),
  }
  const { setupClient } = options
  if (setupClient) {
    let index = 0
    cannonOptions.setupClient = (client) => setupClient(client, index++)
  }

  let latencies = new Float64Array(1 << 16)
  let count = 0
  const databases = options.databaseProcesses ?? []
  const databaseCpuMs = () => (databases.length > 0 ? commandCpuMs(databases) : Number.NaN)
  // Listed once: the processes a run starts with are the ones it measures.
  const serverPids = processTree(server.pid)
  const machineBefore = machineBusyMs()
  const databaseBefore = databaseCpuMs()
  const serverBefore = cpuTime(serverPids)
  const clientBefore = process.cpuUsage()
  const wallStart = performance.now()
  const result = await new Promise<Result>((resolve, reject) => {
    const instance = autocannon(cannonOptions, (error, res) => (error ? reject(error) : resolve(res)))
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (statusCode < 200 || statusCode >= 300) return
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2)
        grown.set(latencies)
        latencies = grown
      }
      latencies[count++] = responseTimeMs
    })
  })
  const wallMs = performance.now() - wallStart
  const client = process.cpuUsage(clientBefore)
  server.assertAlive()
  const serverAfter = cpuTime(serverPids)
  const databaseAfter = databaseCpuMs()
  const machineAfter = machineBusyMs()

  const sorted = latencies.slice(0, count).sort()
  const failures: string[] = []
  for (const [status, { count: n }] of Object.entries(result.statusCodeStats)) {
    if (!status.startsWith('2')) failures.push(`${n} x HTTP ${status}`)
  }
  if (result.errors > 0) failures.push(`${result.errors} errors`)
  if (result.timeouts > 0) failures.push(`${result.timeouts} timeouts`)
  const percentOfCore = (cpuMs: number) => (cpuMs / wallMs) * 100
  const serverCpu = percentOfCore(serverAfter.processMs - serverBefore.processMs)
  const clientCpu = percentOfCore((client.user + client.system) / 1000)
  const databaseCpu = percentOfCore(databaseAfter - databaseBefore)
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    latencies: sorted,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    failures,
    serverCpu,
    serverMainThreadCpu: percentOfCore(serverAfter.mainThreadMs - serverBefore.mainThreadMs),
    clientCpu,
    databaseCpu,
    otherCpu: Math.max(
      0,
      percentOfCore(machineAfter - machineBefore) -
        serverCpu -
        clientCpu -
        (databases.length > 0 ? databaseCpu : 0),
    ),
  }
}
