// The keys that sign and verify access tokens, as this instance currently knows them. They live in the
// database, so every instance shares them; this store reloads them periodically and, rate-limited, when a
// token names a kid it does not know, which is how a rotation made elsewhere reaches a running server.
// A configured JWT_SECRET is used as it is and never stored; so is JWT_SECRET_PREVIOUS, which only verifies.
import { createHmac, type JsonWebKey } from 'node:crypto'
import type { Config } from '../config/load-config.ts'
import type { Db } from '../db/database.ts'
import { isUniqueViolation } from '../db/database-errors.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import {
  generatePrivateJwk,
  type JwtAlgorithm,
  keyMaterial,
  keyProblem,
  kidOf,
  parsePrivateKey,
  publicJwkOf,
} from './algorithms.ts'
import { createKeyRepository, type KeyRepository, type KeyState } from './key.repository.ts'
import { keyEncryptionFor } from './key-encryption.ts'
import { KeyStoreError } from './key-store-error.ts'

export type SigningKey = {
  kid: string
  algorithm: JwtAlgorithm
  state: KeyState
  retiredAt: number | null
  /** What fast-jwt signs with: a PEM private key, or the HMAC secret. */
  signing: string | Buffer
  /** What fast-jwt verifies with: a PEM public key, or the HMAC secret. */
  verifying: string | Buffer
  /** The public JWK as published, or null for HMAC keys, which are never published. */
  publicJwk: JsonWebKey | null
}

/** A public key as published in the JWKS. */
export type PublicJwk = JsonWebKey & { kty: string; kid: string; alg: JwtAlgorithm; use: 'sig' }

export interface KeyStore {
  /** The key new tokens are signed with: the newest active one. */
  signingKey(): SigningKey
  /** The key a token names in its `kid` header, if it may still verify. The kid is only ever a map lookup. */
  verificationKey(kid: string): SigningKey | undefined
  /** Reloads from the database unless it did so in the last few seconds; true when it reloaded. */
  refresh(): Promise<boolean>
  reload(): Promise<void>
  /** The public keys other services verify with: active ones and retired ones still in their grace period. */
  publicJwks(): PublicJwk[]
  /** When the keys were last read from the database (epoch ms): a reload that keeps failing shows here. */
  loadedAt(): number
  /** Reloads every `intervalMs`; returns the function that stops it. */
  startAutoReload(intervalMs: number, onError: (error: unknown) => void): () => void
}

// Defined apart so that key-encryption.ts can throw it; importers keep finding it here.
export { KeyStoreError }

// An unknown kid triggers at most one reload in this time, so a flood of made-up kids costs one query.
const MIN_RELOAD_INTERVAL_MS = 5_000

export type KeyStoreConfig = Pick<
  Config,
  'env' | 'keyEncryptionSecret' | 'keyEncryptionSecretPrevious' | 'keysReloadIntervalSeconds'
> & {
  jwt: Pick<
    Config['jwt'],
    'algorithm' | 'secret' | 'previousSecret' | 'privateKey' | 'accessTokenTtlSeconds' | 'clockLeewaySeconds'
  >
}

/**
 * A stable kid for a configured secret that reveals no more about it than a token signature does. Each secret
 * has its own, so after a rotation a token's kid still names the secret that signed it (JWT_SECRET_PREVIOUS).
 */
export function kidForSecret(secret: string): string {
  return createHmac('sha256', secret).update('tessera key id').digest('base64url').slice(0, 22)
}

/**
 * How long after retirement a key still verifies: the longest an access token it signed can live, counted
 * from the last moment an instance that has not yet reloaded may still sign with it.
 */
export function retirementGraceSeconds(config: KeyStoreConfig): number {
  const lastSignature = config.keysReloadIntervalSeconds + MIN_RELOAD_INTERVAL_MS / 1000
  return config.jwt.accessTokenTtlSeconds + config.jwt.clockLeewaySeconds + lastSignature
}

/**
 * Called in the transaction that makes a key active, to record it (a security event): this layer knows no
 * events, its caller does.
 */
export type KeyActivated = (trx: Db, key: { kid: string; algorithm: JwtAlgorithm }) => Promise<unknown>

/** Makes a new key of the algorithm (or the given one) the active signing key; returns its kid. */
export async function rotateSigningKey(
  keys: KeyRepository,
  clock: Clock,
  algorithm: JwtAlgorithm,
  privateJwk: JsonWebKey = generatePrivateJwk(algorithm),
  { replace = true, onActivated }: { replace?: boolean; onActivated?: KeyActivated | undefined } = {},
): Promise<string> {
  const problem = keyProblem(algorithm, privateJwk)
  if (problem) throw new KeyStoreError(`This key cannot sign ${algorithm}: ${problem}`)
  const kid = await kidOf(algorithm, privateJwk)
  const now = epochSeconds(clock)
  await keys.activate(
    { kid, algorithm, privateJwk, publicJwk: publicJwkOf(algorithm, privateJwk), createdAt: now },
    now,
    { replace, ...(onActivated ? { also: (trx: Db) => onActivated(trx, { kid, algorithm }) } : {}) },
  )
  return kid
}

export function createKeyRepositoryFor(
  db: Db,
  config: Pick<KeyStoreConfig, 'keyEncryptionSecret' | 'keyEncryptionSecretPrevious'>,
): KeyRepository {
  return createKeyRepository(db, keyEncryptionFor(config))
}

/**
 * Where the signing key in use at this start came from: JWT_SECRET or JWT_PRIVATE_KEY already known
 * (`configured`), JWT_PRIVATE_KEY stored now (`imported`), made now (`generated`), or the database's active
 * key (`stored`). The start line says it, so that an operator sees a key appear that nobody configured.
 */
export type KeyProvision = 'configured' | 'imported' | 'generated' | 'stored'

/**
 * Makes sure the database holds the key the configuration asks for. Only `serve` runs this, never the
 * other CLI commands: importing JWT_PRIVATE_KEY if it is new; retiring a stored key when JWT_SECRET has
 * replaced it; and, when no active key of JWT_ALGORITHM exists, generating one outside production and
 * refusing to start in production, where replacing the key that other services verify with must be a
 * deliberate `tessera keys rotate`.
 */
export async function provisionSigningKey(
  db: Db,
  clock: Clock,
  config: KeyStoreConfig,
  onActivated?: KeyActivated,
): Promise<KeyProvision> {
  const keys = createKeyRepositoryFor(db, config)
  const { algorithm } = config.jwt
  try {
    if (config.jwt.secret !== undefined) {
      await keys.retireActive(epochSeconds(clock))
      return 'configured'
    }
    if (config.jwt.privateKey !== undefined) {
      const jwk = parsePrivateKey(config.jwt.privateKey)
      if (await keys.has(await kidOf(algorithm, jwk))) return 'configured'
      await rotateSigningKey(keys, clock, algorithm, jwk, { onActivated })
      return 'imported'
    }
    const active = await keys.findActive()
    if (active?.algorithm === algorithm) return 'stored'
    // The first key: if another instance starting at the same moment makes one first, the database refuses
    // a second active key (below) rather than this one retiring that one.
    if (!active && config.env !== 'production') {
      await rotateSigningKey(keys, clock, algorithm, undefined, { replace: false, onActivated })
      return 'generated'
    }
    if (config.env === 'production') {
      throw new KeyStoreError(
        active
          ? `The active signing key is ${active.algorithm} but JWT_ALGORITHM is ${algorithm}. Other services may ` +
              'verify with the active key: switch deliberately with `npx tessera keys rotate`.'
          : 'No signing key: with NODE_ENV=production, Tessera does not invent one. Set JWT_SECRET ' +
              '(HS256/384/512), set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE, or create one with `npx tessera keys rotate`.',
      )
    }
    await rotateSigningKey(keys, clock, algorithm, undefined, { onActivated })
    return 'generated'
  } catch (error) {
    // Another instance starting at the same moment activated a key first: use that one.
    if (!isUniqueViolation(error)) throw error
    return 'stored'
  }
}

export async function createKeyStore(db: Db, clock: Clock, config: KeyStoreConfig): Promise<KeyStore> {
  const keys = createKeyRepositoryFor(db, config)
  const { algorithm, secret, previousSecret } = config.jwt
  const grace = retirementGraceSeconds(config)

  const configured = (value: string | undefined, state: KeyState): SigningKey | undefined => {
    if (value === undefined) return undefined
    const material = Buffer.from(value)
    return {
      kid: kidForSecret(value),
      algorithm,
      state,
      // A previous secret retires as this process starts: it verifies for the grace of any retired key (an
      // access token's lifetime, and then some), not for as long as someone forgets it in the settings. One
      // that leaked, the reason for many a rotation, then forges nothing past that.
      retiredAt: state === 'retired' ? epochSeconds(clock) : null,
      signing: material,
      verifying: material,
      publicJwk: null,
    }
  }
  const configuredSecret = configured(secret, 'active')
  // Verifies only: `signing` below is never this one.
  const previousConfiguredSecret = configured(previousSecret, 'retired')

  let byKid = new Map<string, SigningKey>()
  let signing: SigningKey | undefined
  // Only reloads asked for by unknown kids are rate-limited (a forged kid costs a query at most every 5 s);
  // a start or a periodic reload must not delay honouring a key rotated a moment later.
  let refreshedAt = Number.NEGATIVE_INFINITY
  let reloading: Promise<void> | undefined
  let loadedAt = Number.NEGATIVE_INFINITY

  const load = async () => {
    const stored = await keys.listUsable(epochSeconds(clock) - grace)
    const next = new Map<string, SigningKey>()
    for (const key of stored) {
      const material = keyMaterial(key.algorithm, key.privateJwk)
      next.set(key.kid, { ...key, ...material })
    }
    if (previousConfiguredSecret) next.set(previousConfiguredSecret.kid, previousConfiguredSecret)
    if (configuredSecret) next.set(configuredSecret.kid, configuredSecret)
    byKid = next
    signing = configuredSecret ?? [...next.values()].find((key) => key.state === 'active')
    loadedAt = clock.now()
  }
  // Concurrent callers share one reload: a burst of unknown kids costs one query, not one each.
  const reload = () => {
    reloading ??= load().finally(() => {
      reloading = undefined
    })
    return reloading
  }

  await reload()

  const isUsable = (key: SigningKey) => key.retiredAt === null || key.retiredAt + grace > epochSeconds(clock)

  return {
    signingKey() {
      if (!signing) throw new KeyStoreError('No active signing key')
      return signing
    },
    verificationKey(kid) {
      const key = byKid.get(kid)
      return key && isUsable(key) ? key : undefined
    },
    async refresh() {
      if (reloading) {
        await reloading
        return true
      }
      if (clock.now() - refreshedAt < MIN_RELOAD_INTERVAL_MS) return false
      refreshedAt = clock.now()
      await reload()
      return true
    },
    reload,
    loadedAt: () => loadedAt,
    publicJwks() {
      return [...byKid.values()]
        .filter((key) => key.publicJwk !== null && isUsable(key))
        .map((key) => ({
          ...key.publicJwk,
          kty: String(key.publicJwk?.kty),
          kid: key.kid,
          alg: key.algorithm,
          use: 'sig',
        }))
    },
    startAutoReload(intervalMs, onError) {
      const timer = setInterval(() => reload().catch(onError), intervalMs)
      timer.unref()
      return () => clearInterval(timer)
    },
  }
}
