// Private keys at rest: when KEY_ENCRYPTION_SECRET is set, each private JWK is stored as a JWE (RFC 7516,
// compact, `dir` + A256GCM, made by jose) under a key derived from that secret with HKDF-SHA256. Without it,
// keys are stored as plain JWK JSON, protected only by the database's own access control. Signing keys,
// server secrets (server-secret.ts) and TOTP secrets (as `oct` JWKs) are sealed this way. See
// docs/decisions/0006-signing-keys.md. KEY_ENCRYPTION_SECRET_PREVIOUS opens, never seals: a rotation
// (`tessera keys reseal`, keys-reseal.ts) re-seals what is still under it.
import { hkdfSync, type JsonWebKey } from 'node:crypto'
import type { Config } from '../config/load-config.ts'
import { KeyStoreError } from './key-store-error.ts'

export type KeyEncryption = {
  /** Whether KEY_ENCRYPTION_SECRET is set: what seal() returns is then encrypted. */
  readonly encrypts: boolean
  seal(jwk: JsonWebKey): Promise<string>
  open(stored: string): Promise<JsonWebKey>
  /** Whether `stored` is sealed under KEY_ENCRYPTION_SECRET and says so (its kid): a reseal leaves it as it is. */
  isSealedUnderCurrent(stored: string): boolean
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

type Kek = { kid: string; key: Uint8Array }

function kekOf(secret: string): Kek {
  return {
    key: new Uint8Array(hkdfSync('sha256', secret, 'tessera', 'signing key encryption v1', 32)),
    // Names the secret in the JWE header, so that opening picks the right one without trying each. Derived
    // apart from the key (another HKDF info): it tells nothing about the key, nor about the secret.
    kid: `kek-${Buffer.from(hkdfSync('sha256', secret, 'tessera', 'key encryption key id v1', 12)).toString('base64url')}`,
  }
}

/** The `kid` of a compact JWE's protected header, if it has one. */
function kidIn(stored: string): string | undefined {
  try {
    const header: unknown = JSON.parse(
      Buffer.from(stored.slice(0, stored.indexOf('.')), 'base64url').toString(),
    )
    const kid = (header as { kid?: unknown } | null)?.kid
    return typeof kid === 'string' ? kid : undefined
  } catch {
    return undefined
  }
}

/** The encryption the configuration asks for: KEY_ENCRYPTION_SECRET, and KEY_ENCRYPTION_SECRET_PREVIOUS to open. */
export const keyEncryptionFor = (
  config: Pick<Config, 'keyEncryptionSecret' | 'keyEncryptionSecretPrevious'>,
) => createKeyEncryption(config.keyEncryptionSecret, config.keyEncryptionSecretPrevious)

export function createKeyEncryption(
  secret: string | undefined,
  previous?: string | undefined,
): KeyEncryption {
  const current = secret === undefined ? undefined : kekOf(secret)
  const keks = [current, previous === undefined ? undefined : kekOf(previous)].filter(
    (kek): kek is Kek => kek !== undefined,
  )
  return {
    encrypts: current !== undefined,
    async seal(jwk) {
      const json = JSON.stringify(jwk)
      if (!current) return json
      // jose is loaded on use (here, and for kids in algorithms.ts): a running server never needs it
      // unless its keys are encrypted, and it weighs about 15 MB of memory.
      const { CompactEncrypt } = await import('jose')
      return new CompactEncrypt(encoder.encode(json))
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: current.kid })
        .encrypt(current.key)
    },
    async open(stored) {
      if (stored.startsWith('{')) return JSON.parse(stored) as JsonWebKey
      if (keks.length === 0) {
        throw new KeyStoreError(
          'The signing keys in the database are encrypted: set KEY_ENCRYPTION_SECRET to read them',
        )
      }
      // Sealed by a release before kids: each secret is tried, the current one first.
      const kid = kidIn(stored)
      const candidates = kid === undefined ? keks : keks.filter((kek) => kek.kid === kid)
      const { compactDecrypt } = await import('jose')
      for (const kek of candidates) {
        try {
          const { plaintext } = await compactDecrypt(stored, kek.key)
          return JSON.parse(decoder.decode(plaintext)) as JsonWebKey
        } catch {}
      }
      throw new KeyStoreError(
        `A key in the database cannot be decrypted with this KEY_ENCRYPTION_SECRET${previous === undefined ? '' : ' nor KEY_ENCRYPTION_SECRET_PREVIOUS'}`,
      )
    },
    isSealedUnderCurrent(stored) {
      return current !== undefined && !stored.startsWith('{') && kidIn(stored) === current.kid
    },
  }
}
