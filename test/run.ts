// `npm test`: the whole suite on every backend combination (SQLite and PostgreSQL, each without and with
// Redis), then the scale-out tests (several processes, outages), the operations tests (nginx, systemd, upgrades)
// and the browser tests (chromium) once. A PostgreSQL or Redis that cannot be
// reached fails the run with the command that starts it: nothing is skipped silently. A developer without
// them chooses the runs explicitly, e.g. `TESSERA_TEST_BACKENDS=sqlite npm test`.
//
// Arguments after `--` are passed to `node --test` (e.g. `npm test -- --test-name-pattern=refresh`).
import { spawn } from 'node:child_process'
import { connect } from 'node:net'

const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

type Run = { name: string; files: string[]; postgres: boolean; redis: boolean }

const SUITE = ['test/unit/**/*.test.ts', 'test/e2e/**/*.test.ts']
const RUNS: Run[] = [
  { name: 'sqlite', files: SUITE, postgres: false, redis: false },
  { name: 'sqlite+redis', files: SUITE, postgres: false, redis: true },
  { name: 'postgres', files: SUITE, postgres: true, redis: false },
  { name: 'postgres+redis', files: SUITE, postgres: true, redis: true },
  { name: 'scale-out', files: ['test/scale-out/**/*.test.ts'], postgres: true, redis: true },
  // The operator's set-up, once: nginx in front of two instances, the systemd unit, `npm run dev`'s restarts,
  // and the previous release's server beside this one on a database this one migrated (SQLite and PostgreSQL).
  { name: 'operations', files: ['test/operations/**/*.test.ts'], postgres: true, redis: true },
  // The account page and the client in Debian's chromium (CHROMIUM_PATH), once: the browser is what is tested.
  { name: 'browser', files: ['test/browser/**/*.test.ts'], postgres: false, redis: false },
]

const START_HINTS = {
  postgres: `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,
  redis: `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`,
}

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port), timeout: 2000 })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('timeout', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(false))
  })
}

function runNodeTest(run: Run, extraArgs: string[]): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.TESSERA_TEST_POSTGRES_URL
  delete env.TESSERA_TEST_REDIS_URL
  if (run.postgres) env.TESSERA_TEST_POSTGRES_URL = POSTGRES_URL
  if (run.redis) env.TESSERA_TEST_REDIS_URL = REDIS_URL
  const args = ['--test', '--test-reporter=spec', ...extraArgs, ...run.files]
  const child = spawn(process.execPath, args, { env, stdio: 'inherit' })
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)))
}

const chosen = process.env.TESSERA_TEST_BACKENDS?.split(',').map((name) => name.trim())
const runs = chosen ? RUNS.filter((run) => chosen.includes(run.name)) : RUNS
if (chosen && runs.length !== chosen.length) {
  console.error(`TESSERA_TEST_BACKENDS names an unknown run; known: ${RUNS.map((r) => r.name).join(', ')}`)
  process.exit(2)
}

const missing: string[] = []
if (runs.some((run) => run.postgres) && !(await reachable(POSTGRES_URL))) missing.push('postgres')
if (runs.some((run) => run.redis) && !(await reachable(REDIS_URL))) missing.push('redis')
if (missing.length > 0) {
  for (const name of missing) {
    const url = name === 'postgres' ? POSTGRES_URL : REDIS_URL
    console.error(`\n✖ ${name} is not reachable at ${new URL(url).host}; the tests need it. Start it with:`)
    console.error(`    ${START_HINTS[name as keyof typeof START_HINTS]}`)
  }
  console.error('\nOr run only what this machine has, e.g. TESSERA_TEST_BACKENDS=sqlite npm test\n')
  process.exit(1)
}

const extraArgs = process.argv.slice(2)
const results: { name: string; code: number; seconds: number }[] = []
for (const run of runs) {
  console.log(`\n━━━ tests on ${run.name} ━━━\n`)
  const started = performance.now()
  const code = await runNodeTest(run, extraArgs)
  results.push({ name: run.name, code, seconds: (performance.now() - started) / 1000 })
}

console.log('\n━━━ summary ━━━')
for (const { name, code, seconds } of results) {
  console.log(
    `${code === 0 ? '✔' : '✖'} ${name.padEnd(16)} ${code === 0 ? 'passed' : 'FAILED'} in ${seconds.toFixed(1)} s`,
  )
}
for (const run of RUNS.filter((candidate) => !runs.includes(candidate))) {
  console.log(`- ${run.name.padEnd(16)} not run (TESSERA_TEST_BACKENDS)`)
}
process.exit(results.every((result) => result.code === 0) ? 0 : 1)
