// Holds the keys that sign and verify access tokens. A configured JWT_SECRET is the key; otherwise a random
// key is generated on first start and kept in the database, so restarts (and other instances on the same
// database) keep accepting the tokens it signed. Never a built-in default.
import { createHmac, randomBytes } from 'node:crypto'
import type { HmacAlgorithm } from '../config/load-config.ts'
import type { Db } from '../db/database.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { randomToken } from '../lib/ids.ts'

export type SigningKey = {
  kid: string
  algorithm: HmacAlgorithm
  secret: Buffer
}

export interface KeyStore {
  /** The key new tokens are signed with. */
  signingKey(): SigningKey
  /** The key a token names in its `kid` header, if we hold it. The kid is only ever a map lookup. */
  verificationKey(kid: string): SigningKey | undefined
}

// RFC 7518 section 3.2: an HMAC key at least as long as the hash output.
const SECRET_BYTES: Record<HmacAlgorithm, number> = { HS256: 32, HS384: 48, HS512: 64 }

/** A stable kid for a configured secret that reveals no more about it than a token signature does. */
function kidForSecret(secret: string): string {
  return createHmac('sha256', secret).update('tessera key id').digest('base64url').slice(0, 22)
}

async function loadOrCreateStoredKey(db: Db, clock: Clock, algorithm: HmacAlgorithm): Promise<SigningKey> {
  const find = () =>
    db
      .selectFrom('signing_keys')
      .select(['kid', 'private_jwk'])
      .where('algorithm', '=', algorithm)
      .where('state', '=', 'active')
      .orderBy('created_at', 'desc')
      .executeTakeFirst()
  let row = await find()
  if (!row) {
    const jwk = { kty: 'oct', k: randomBytes(SECRET_BYTES[algorithm]).toString('base64url'), alg: algorithm }
    await db
      .insertInto('signing_keys')
      .values({
        kid: randomToken(16),
        algorithm,
        private_jwk: JSON.stringify(jwk),
        public_jwk: null,
        state: 'active',
        created_at: epochSeconds(clock),
        retired_at: null,
      })
      .execute()
    row = await find()
  }
  if (!row) throw new Error('the generated signing key could not be read back')
  const jwk = JSON.parse(row.private_jwk) as { k: string }
  return { kid: row.kid, algorithm, secret: Buffer.from(jwk.k, 'base64url') }
}

export async function createKeyStore(
  db: Db,
  clock: Clock,
  config: { algorithm: HmacAlgorithm; secret: string | undefined },
): Promise<KeyStore> {
  const key: SigningKey =
    config.secret !== undefined
      ? { kid: kidForSecret(config.secret), algorithm: config.algorithm, secret: Buffer.from(config.secret) }
      : await loadOrCreateStoredKey(db, clock, config.algorithm)
  return {
    signingKey: () => key,
    verificationKey: (kid) => (kid === key.kid ? key : undefined),
  }
}
