// Signing algorithms: for each of BENCH_ALGORITHMS in turn, a Tessera process of its own (HS256 with a
// JWT_SECRET, the others with a fresh JWT_PRIVATE_KEY), GET /bench/verify-only with the same token on every request
// (the verified-token cache answers) and with a different token on every request (full signature verification),
// in the same rounds as bare Fastify.
import { createPrivateKey } from 'node:crypto'
import { join } from 'node:path'
import { VERIFIED_TOKEN_CACHE_SIZE } from '../../src/access/token.service.ts'
import { generatePrivateJwk, isHmac, JWT_ALGORITHMS, type JwtAlgorithm } from '../../src/keys/algorithms.ts'
import { defineSection, list, setting } from '../lib/context.ts'
import { peakRssMb } from '../lib/processes.ts'
import { mb, ms, num, range, ratio, runNotes, table } from '../lib/report.ts'
import { combine, type Route, type Runs, roundRatios, rps, runRounds } from '../lib/rounds.ts'
import { issue, jwtSecret, signUp, writeTokens } from '../lib/tessera.ts'

const algorithms = list('BENCH_ALGORITHMS', JWT_ALGORITHMS, ['HS256', 'EdDSA', 'ES256', 'RS256'])
const distinctTokens = setting('BENCH_DISTINCT_TOKENS', 12_000)

type KeyResult = { algorithm: JwtAlgorithm; runs: Runs; peakMb: number; microsPerToken: number }

/** The private key of a new key pair for the algorithm, as PEM (PKCS#8), as an operator would configure it. */
function privateKeyPem(algorithm: JwtAlgorithm): string {
  return createPrivateKey({ key: generatePrivateJwk(algorithm), format: 'jwk' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString()
}

export default defineSection<KeyResult[]>({
  name: 'keys',
  description:
    'verify-only per signing algorithm, with the same token and with a different token on every request',

  async run(ctx) {
    const { settings } = ctx
    const results: KeyResult[] = []
    for (const algorithm of algorithms) {
      const server = await ctx.startTessera(`Tessera, ${algorithm}`, {
        JWT_ALGORITHM: algorithm,
        ...(isHmac(algorithm)
          ? { JWT_SECRET: jwtSecret() }
          : { JWT_SECRET: undefined, JWT_PRIVATE_KEY: privateKeyPem(algorithm) }),
      })
      const { headers } = await signUp(server)
      const { tokens, microsPerToken } = await issue(server, '/bench/mint', headers, distinctTokens)
      const file = writeTokens(join(ctx.tempDir, `tokens-${algorithm}.txt`), tokens)
      // Each run continues in the list where the previous one stopped (see ../lib/lua/tokens.lua).
      let start: number[] = []
      const get = (seconds: number, path: string) => ({
        path,
        connections: settings.connections,
        durationSeconds: seconds,
      })
      const routes: Route[] = [
        { name: 'bare', load: (seconds) => ({ ...get(seconds, '/bench/bare'), server: ctx.bare, headers }) },
        {
          name: 'same token',
          load: (seconds) => ({ ...get(seconds, '/bench/verify-only'), server, headers }),
        },
        {
          name: 'distinct tokens',
          load: (seconds) => ({
            ...get(seconds, '/bench/verify-only'),
            server,
            script: { kind: 'tokens', file, start },
          }),
          after: (result) => {
            start = result.positions
          },
        },
      ]
      const runs = await runRounds(ctx, routes, {
        rounds: settings.sectionRounds,
        seconds: settings.sectionDurationSeconds,
        warmupSeconds: settings.sectionWarmupSeconds,
      })
      results.push({ algorithm, runs, peakMb: peakRssMb(server.pid), microsPerToken })
      await server.stop()
    }
    return results
  },

  print(results, ctx) {
    const { settings } = ctx
    const column = (key: KeyResult, name: string) => {
      const runs = key.runs.get(name) ?? []
      const vsBare = roundRatios(runs, key.runs.get('bare') ?? [], rps)
      return [
        num(combine(runs).requestsPerSecond),
        ratio(vsBare.median),
        range(vsBare),
        ms(combine(runs).p99),
      ]
    }
    const lines = [
      `Signing algorithms: GET /bench/verify-only, one Tessera process per algorithm in turn, ${settings.sectionRounds} ` +
        `rounds of ${settings.sectionDurationSeconds} s beside bare Fastify`,
      ...table(
        [
          'algorithm',
          'same token req/s',
          'vs bare',
          'range',
          'p99 ms',
          'distinct req/s',
          'vs bare',
          'range',
          'p99 ms',
          'mint us/token',
          'bare req/s',
          'peak RSS',
        ],
        results.map((key) => [
          key.algorithm,
          ...column(key, 'same token'),
          ...column(key, 'distinct tokens'),
          num(key.microsPerToken, 1),
          num(combine(key.runs.get('bare') ?? []).requestsPerSecond),
          mb(key.peakMb),
        ]),
      ),
      '  same token: one token on every request; after the first, the verified-token cache skips its decoding and',
      '  signature check (the time checks and the revocation check remain).',
      `  distinct: ${num(distinctTokens)} tokens minted per algorithm (POST /bench/mint) and cycled, so that none comes`,
      `  back within the ${num(VERIFIED_TOKEN_CACHE_SIZE)} verifications the cache remembers: every request checks the signature.`,
      '  mint us/token: wall time of minting per token, in batches over HTTP: mostly the signature. peak RSS: the life',
      '  of that process, its cache full of distinct tokens.',
      '',
    ]
    const notes = results.flatMap((key) =>
      [...key.runs].flatMap(([name, runs]) => runNotes(`${key.algorithm}, ${name}`, runs, ctx.wrk.threads)),
    )
    if (distinctTokens <= VERIFIED_TOKEN_CACHE_SIZE) {
      notes.push(
        `BENCH_DISTINCT_TOKENS=${distinctTokens} does not outnumber the ${VERIFIED_TOKEN_CACHE_SIZE} tokens the server ` +
          'caches: the distinct-token runs hit the cache.',
      )
    }
    return { lines, notes }
  },
})
