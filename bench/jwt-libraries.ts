// Compares jose and fast-jwt on the operations Tessera does per request (verify) and per login (sign),
// for each algorithm we support. Prints operations/s and the fast-jwt/jose ratio. Not run in CI.
import { createSecretKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { createSigner, createVerifier } from 'fast-jwt'
import { jwtVerify, SignJWT } from 'jose'

const ITERATIONS = Number(process.env.BENCH_JWT_ITERATIONS ?? 20_000)

async function opsPerSecond(fn: () => unknown, iterations = ITERATIONS): Promise<number> {
  for (let i = 0; i < 500; i++) await fn()
  const start = performance.now()
  for (let i = 0; i < iterations; i++) await fn()
  return iterations / ((performance.now() - start) / 1000)
}

const claims = { sub: '0190e1a2-0000-7000-8000-000000000000', username: 'ada', roles: ['user'], jti: 'x' }
const common = { iss: 'http://127.0.0.1:8000', aud: 'tessera' }

const secret = randomBytes(32)
const cases: { alg: 'HS256' | 'EdDSA' | 'ES256' | 'RS256'; signKey: KeyObject; verifyKey: KeyObject }[] = [
  { alg: 'HS256', signKey: createSecretKey(secret), verifyKey: createSecretKey(secret) },
  ...(['EdDSA', 'ES256', 'RS256'] as const).map((alg) => {
    const pair =
      alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : alg === 'ES256'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('rsa', { modulusLength: 2048 })
    return { alg, signKey: pair.privateKey, verifyKey: pair.publicKey }
  }),
]

console.log('alg    op      jose ops/s  fast-jwt ops/s  fast-jwt/jose')
for (const { alg, signKey, verifyKey } of cases) {
  const now = Math.floor(Date.now() / 1000)
  const joseSign = () =>
    new SignJWT(claims)
      .setProtectedHeader({ alg, typ: 'at+jwt', kid: 'k1' })
      .setIssuer(common.iss)
      .setAudience(common.aud)
      .setIssuedAt(now)
      .setExpirationTime(now + 900)
      .sign(signKey)
  const fastSigner = createSigner({
    key: alg === 'HS256' ? secret : signKey.export({ format: 'pem', type: 'pkcs8' }),
    algorithm: alg,
    kid: 'k1',
    header: { alg, typ: 'at+jwt' },
    iss: common.iss,
    aud: common.aud,
    expiresIn: 900_000,
  })
  const token = await joseSign()
  const fastVerifier = createVerifier({
    key: alg === 'HS256' ? secret : verifyKey.export({ format: 'pem', type: 'spki' }),
    algorithms: [alg],
    allowedIss: common.iss,
    allowedAud: common.aud,
    requiredClaims: ['exp'],
    cache: false,
  })
  const fastVerifierCached = createVerifier({
    key: alg === 'HS256' ? secret : verifyKey.export({ format: 'pem', type: 'spki' }),
    algorithms: [alg],
    allowedIss: common.iss,
    allowedAud: common.aud,
    requiredClaims: ['exp'],
    cache: 1000,
  })
  const joseVerify = () =>
    jwtVerify(token, verifyKey, {
      algorithms: [alg],
      issuer: common.iss,
      audience: common.aud,
      typ: 'at+jwt',
      requiredClaims: ['exp'],
    })
  const signRatio: [number, number] = [
    await opsPerSecond(joseSign, 5000),
    await opsPerSecond(() => fastSigner(claims), 5000),
  ]
  const verifyRatio: [number, number] = [
    await opsPerSecond(joseVerify),
    await opsPerSecond(() => fastVerifier(token)),
  ]
  const cached = await opsPerSecond(() => fastVerifierCached(token))
  const row = (op: string, [a, b]: [number, number]) =>
    console.log(
      `${alg.padEnd(6)} ${op.padEnd(7)} ${a.toFixed(0).padStart(10)}  ${b.toFixed(0).padStart(14)}  ${(b / a).toFixed(2)}x`,
    )
  row('sign', signRatio)
  row('verify', verifyRatio)
  console.log(`${alg.padEnd(6)} verify  (fast-jwt with its token cache: ${cached.toFixed(0)} ops/s)`)
}
