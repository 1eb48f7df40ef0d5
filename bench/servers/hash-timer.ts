// Times argon2id at the configured parameters, in a process of its own pinned to the server cores (argv[2]: the
// parameters as JSON; argv[3]: how many hashes at once, one per server core). Prints JSON on stdout: the median
// seconds of 20 hashes one at a time, and the hashes/s of `parallel` at a time for 3 s.
import { randomBytes } from 'node:crypto'
import { type Argon2Params, createPasswordHasher } from '../../src/auth/password-hasher.ts'

const SAMPLES = 20
const PARALLEL_MS = 3_000

const params = JSON.parse(process.argv[2] ?? '{}') as Argon2Params
const parallel = Number(process.argv[3] ?? 1)
const hasher = createPasswordHasher(params, parallel)
const password = randomBytes(12).toString('hex')
await hasher.hash(password)

const samples: number[] = []
for (let i = 0; i < SAMPLES; i++) {
  const start = performance.now()
  await hasher.hash(password)
  samples.push((performance.now() - start) / 1000)
}
samples.sort((a, b) => a - b)

let hashes = 0
const start = performance.now()
const until = start + PARALLEL_MS
await Promise.all(
  Array.from({ length: parallel }, async () => {
    while (performance.now() < until) {
      await hasher.hash(password)
      hashes++
    }
  }),
)
const secondsPerHash = ((samples[SAMPLES / 2 - 1] ?? 0) + (samples[SAMPLES / 2] ?? 0)) / 2
const parallelHashesPerSecond = hashes / ((performance.now() - start) / 1000)
process.stdout.write(`${JSON.stringify({ samples: SAMPLES, secondsPerHash, parallelHashesPerSecond })}\n`)
