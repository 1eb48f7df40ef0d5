// Cold start: from spawning the process that `npm start` runs to the first 200 of GET /health, on an existing
// database (a restart, the usual case) and on a new one (the first start: the file, the migrations, a signing key),
// beside bare Node (an empty script, to its exit) and bare Fastify (to its first 200), in rounds, each process
// pinned to the server cores. `npm start`'s own command is read from package.json, so that the bench times what
// ships; npm's start-up (a second or so of its own CLI) is not Tessera's and is left out.
import { spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../../test/helpers/outages.ts'
import { npmStart } from '../lib/build.ts'
import { defineSection, setting } from '../lib/context.ts'
import { ms, num, type TargetRow, table } from '../lib/report.ts'
import { median } from '../lib/rounds.ts'
import { tesseraEnv } from '../lib/tessera.ts'

const ROOT = resolve(import.meta.dirname, '..', '..')
const rounds = setting('BENCH_COLD_START_ROUNDS', 7)
const TIMEOUT_MS = 30_000

/**
 * Milliseconds from spawning `node <file> <args>` on `cpus` to its first 200 on `url` (polled every 2 ms), or, with
 * no url, to its exit. The process is then killed.
 */
async function timeStart(
  cpus: string,
  nodeOptions: string[],
  file: string,
  args: string[],
  env: Record<string, string>,
  url?: string,
): Promise<number> {
  const started = performance.now()
  const child = spawn('taskset', ['-c', cpus, process.execPath, ...nodeOptions, file, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  try {
    if (url === undefined) {
      const code = await exited
      if (code !== 0) throw new Error(`${file} exited with ${code}: ${stderr}`)
      return performance.now() - started
    }
    let ended = false
    void exited.then(() => {
      ended = true
    })
    while (performance.now() - started < TIMEOUT_MS) {
      if (ended) throw new Error(`${file} exited before answering: ${stderr.slice(0, 500)}`)
      const ok = await fetch(url).then(
        (response) => response.status === 200,
        () => false,
      )
      // bin/start.js falls back to the sources when it cannot build: that start is not the one to time.
      if (ok && /running the sources/.test(stderr))
        throw new Error(`${file} ran the sources: ${stderr.trim()}`)
      if (ok) return performance.now() - started
      await sleep(2)
    }
    throw new Error(`${file} did not answer ${url} within ${TIMEOUT_MS / 1000} s`)
  } finally {
    child.kill('SIGKILL')
    await exited
  }
}

type Result = { command: string; node: number[]; bare: number[]; restart: number[]; first: number[] }

export default defineSection<Result>({
  name: 'cold-start',
  description:
    'spawn to the first 200 of GET /health, as npm start runs Tessera, beside bare Node and bare Fastify',

  async run(ctx) {
    const { serverCpus } = ctx.settings
    const { nodeOptions, file, args } = npmStart()
    const { bareFile } = ctx
    const emptyScript = join(ctx.tempDir, 'empty.js')
    writeFileSync(emptyScript, '')
    const result: Result = {
      command: `node ${[...nodeOptions, file.slice(ROOT.length + 1), ...args].join(' ')}`,
      node: [],
      bare: [],
      restart: [],
      first: [],
    }
    // The database of the restarts, created (and migrated) once by a first start that is not counted.
    const restartEnv = tesseraEnv(ctx.tempDir, 'cold-start', 'silent')
    const health = async (env: Record<string, string>) => {
      const port = await freePort()
      // As a production start needs it: the issuer clients see, which the listening address is not.
      return timeStart(
        serverCpus,
        nodeOptions,
        file,
        args,
        { ...env, PORT: String(port), PUBLIC_URL: 'https://auth.bench.example' },
        `http://127.0.0.1:${port}/health`,
      )
    }
    await health(restartEnv)
    for (let round = 0; round < rounds; round++) {
      result.node.push(await timeStart(serverCpus, [], emptyScript, [], {}))
      const barePort = await freePort()
      result.bare.push(
        await timeStart(
          serverCpus,
          [],
          bareFile,
          [],
          { PORT: String(barePort) },
          `http://127.0.0.1:${barePort}/bench/bare`,
        ),
      )
      result.restart.push(await health(restartEnv))
      const firstEnv = tesseraEnv(ctx.tempDir, `cold-start-first-${round}`, 'silent')
      result.first.push(await health(firstEnv))
      rmSync(firstEnv.DATABASE_URL ?? '', { force: true })
    }
    return result
  },

  print(r) {
    const row = (label: string, runs: number[]) => [
      label,
      ms(median(runs)),
      ms(Math.min(...runs)),
      ms(Math.max(...runs)),
    ]
    const lines = [
      `Cold start: spawn to the first 200, ${rounds} rounds (median, min, max), each process pinned to the server cores`,
      ...table(
        ['process', 'median ms', 'min', 'max'],
        [
          row('bare Node, an empty script, to its exit', r.node),
          row('bare Fastify, to GET /bench/bare', r.bare),
          row(`Tessera (${r.command}), existing database, to GET /health`, r.restart),
          row('Tessera, new database (created, migrated, a key made), to GET /health', r.first),
        ],
      ),
      '',
    ]
    const targets: TargetRow[] = [
      {
        name: 'Tessera cold start to a ready /health (existing database)',
        measured: `${ms(median(r.restart))} ms`,
        baseline: `bare Fastify ${ms(median(r.bare))} ms`,
        value: median(r.restart),
        target: { op: '<=', limit: 1000, unit: 'ms' },
      },
      {
        name: 'Tessera cold start to a ready /health (new database)',
        measured: `${ms(median(r.first))} ms`,
        baseline: `bare Node ${num(median(r.node))} ms`,
        value: median(r.first),
        target: { op: '<=', limit: 1000, unit: 'ms' },
      },
    ]
    return { lines, targets }
  },
})
