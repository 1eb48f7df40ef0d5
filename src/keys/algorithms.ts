// The signing algorithms Tessera supports, and how each one's keys are made and read. Keys are kept as JWKs
// (RFC 7517); key objects come from node:crypto.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto'
import { HMAC_KEY_BYTES, type JwtAlgorithm } from '../config/config.schema.ts'

// The list of names is a setting's choices (JWT_ALGORITHM), so config declares it; it is re-exported here
// for the code that makes and uses keys.
export { JWT_ALGORITHMS, type JwtAlgorithm } from '../config/config.schema.ts'

export const isHmac = (algorithm: JwtAlgorithm): boolean => algorithm.startsWith('HS')

const RSA_MODULUS_BITS = 2048

/** A private JWK for a new key of the algorithm (for HMAC, the secret as an `oct` key). */
export function generatePrivateJwk(algorithm: JwtAlgorithm): JsonWebKey {
  if (isHmac(algorithm)) {
    return { kty: 'oct', k: randomBytes(HMAC_KEY_BYTES[algorithm] ?? 64).toString('base64url') }
  }
  const { privateKey } =
    algorithm === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : algorithm === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('rsa', { modulusLength: RSA_MODULUS_BITS })
  return privateKey.export({ format: 'jwk' })
}

/** Checks that a key (imported from a file, say) suits the algorithm, and says why not. */
export function keyProblem(algorithm: JwtAlgorithm, jwk: JsonWebKey): string | undefined {
  if (isHmac(algorithm)) {
    const bytes = jwk.kty === 'oct' && typeof jwk.k === 'string' ? Buffer.from(jwk.k, 'base64url').length : 0
    const needed = HMAC_KEY_BYTES[algorithm] ?? 64
    return bytes >= needed ? undefined : `${algorithm} needs an oct key of at least ${needed} bytes`
  }
  if (!('d' in jwk)) return 'a private key is needed to sign'
  if (algorithm === 'EdDSA' && !(jwk.kty === 'OKP' && jwk.crv === 'Ed25519'))
    return 'EdDSA needs an Ed25519 key'
  if (algorithm === 'ES256' && !(jwk.kty === 'EC' && jwk.crv === 'P-256')) return 'ES256 needs a P-256 EC key'
  if (algorithm === 'RS256') {
    if (jwk.kty !== 'RSA') return 'RS256 needs an RSA key'
    const bits = Buffer.from(String(jwk.n), 'base64url').length * 8
    if (bits < RSA_MODULUS_BITS)
      return `RS256 needs an RSA key of at least ${RSA_MODULUS_BITS} bits; this one has ${bits}`
  }
  return undefined
}

/** The public half as it is published in the JWKS (no private members), or null for HMAC keys. */
export function publicJwkOf(algorithm: JwtAlgorithm, privateJwk: JsonWebKey): JsonWebKey | null {
  if (isHmac(algorithm)) return null
  return createPublicKey({ key: privateJwk, format: 'jwk' }).export({ format: 'jwk' })
}

/** RFC 7638 thumbprint of the public key: a kid that anyone holding the public key can recompute. */
export async function kidOf(algorithm: JwtAlgorithm, privateJwk: JsonWebKey): Promise<string> {
  const jwk = publicJwkOf(algorithm, privateJwk) ?? privateJwk
  // For an HMAC key the thumbprint would be a hash of the secret: prefix it, so that it is not a plain
  // SHA-256 of the key (the kid of an HMAC key is never published anyway).
  // Loaded on use: a key is made or imported rarely, and jose is heavy (key-encryption.ts).
  const { calculateJwkThumbprint } = await import('jose')
  const thumbprint = await calculateJwkThumbprint(jwk as Parameters<typeof calculateJwkThumbprint>[0])
  return isHmac(algorithm) ? `hs-${thumbprint.slice(0, 22)}` : thumbprint
}

/** PEM texts of the key pair, as fast-jwt takes them; for HMAC, the raw secret. */
export function keyMaterial(
  algorithm: JwtAlgorithm,
  privateJwk: JsonWebKey,
): { signing: string | Buffer; verifying: string | Buffer } {
  if (isHmac(algorithm)) {
    const secret = Buffer.from(String(privateJwk.k), 'base64url')
    return { signing: secret, verifying: secret }
  }
  const privateKey: KeyObject = createPrivateKey({ key: privateJwk, format: 'jwk' })
  return {
    signing: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    verifying: createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString(),
  }
}

/** Reads a private key given as PEM (PKCS#8, or PKCS#1/SEC1) or as a JWK in JSON. */
export function parsePrivateKey(text: string): JsonWebKey {
  const trimmed = text.trim()
  if (trimmed.startsWith('{'))
    return createPrivateKey({ key: JSON.parse(trimmed), format: 'jwk' }).export({ format: 'jwk' })
  return createPrivateKey(trimmed).export({ format: 'jwk' })
}
