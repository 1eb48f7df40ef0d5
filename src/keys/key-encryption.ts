// Private keys at rest: when KEY_ENCRYPTION_SECRET is set, each private JWK is stored as a JWE (RFC 7516,
// compact, `dir` + A256GCM, made by jose) under a key derived from that secret with HKDF-SHA256. Without it,
// keys are stored as plain JWK JSON, protected only by the database's own access control. Signing keys and
// server secrets (server-secret.ts, as `oct` JWKs) are sealed this way. See docs/decisions/0006-signing-keys.md.
import { hkdfSync, type JsonWebKey } from 'node:crypto'

export type KeyEncryption = {
  /** Whether KEY_ENCRYPTION_SECRET is set: what seal() returns is then encrypted. */
  readonly encrypts: boolean
  seal(jwk: JsonWebKey): Promise<string>
  open(stored: string): Promise<JsonWebKey>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function createKeyEncryption(secret: string | undefined): KeyEncryption {
  const key =
    secret === undefined
      ? undefined
      : new Uint8Array(hkdfSync('sha256', secret, 'tessera', 'signing key encryption v1', 32))
  return {
    encrypts: key !== undefined,
    async seal(jwk) {
      const json = JSON.stringify(jwk)
      if (!key) return json
      // jose is loaded on use (here, and for kids in algorithms.ts): a running server never needs it
      // unless its keys are encrypted, and it weighs about 15 MB of memory.
      const { CompactEncrypt } = await import('jose')
      return new CompactEncrypt(encoder.encode(json))
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
        .encrypt(key)
    },
    async open(stored) {
      if (stored.startsWith('{')) return JSON.parse(stored) as JsonWebKey
      if (!key) {
        throw new Error(
          'The signing keys in the database are encrypted: set KEY_ENCRYPTION_SECRET to read them',
        )
      }
      try {
        const { compactDecrypt } = await import('jose')
        const { plaintext } = await compactDecrypt(stored, key)
        return JSON.parse(decoder.decode(plaintext)) as JsonWebKey
      } catch {
        throw new Error('A signing key in the database cannot be decrypted with this KEY_ENCRYPTION_SECRET')
      }
    },
  }
}
