// Refresh tokens name their session and its generation, sealed with an HMAC under a server secret: the
// database keeps only the session's current generation, whatever the number of refreshes, and no token. A
// token is authentic only if its tag verifies, so a forged one that names a real session and an old
// generation is refused without counting as reuse. Clients treat tokens as opaque. See decision 0010.
//
// Tokens issued before (decision 0005) were 256-bit random values stored as SHA-256 hashes, each successor
// HMAC-derived from its predecessor; sessions started then finish their life with them converted at their
// next refresh (the legacy functions below).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

const VERSION = 1
const SESSION_ID_BYTES = 16
const GENERATION_BYTES = 4
const TAG_BYTES = 32
const BODY_BYTES = 1 + SESSION_ID_BYTES + GENERATION_BYTES
const TOKEN_BYTES = BODY_BYTES + TAG_BYTES
// Separates these tags from every other use of the secret (legacy successors are HMACs of 43-character text).
const TAG_CONTEXT = Buffer.from('tessera refresh token v1\0')
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{71}$/
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export type RefreshTokenClaims = { sessionId: string; generation: number }

function tag(secret: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(TAG_CONTEXT).update(body).digest()
}

/** The token of a session's generation: the same for the same inputs, so a repeat can be answered with it. */
export function refreshTokenFor(secret: Buffer, { sessionId, generation }: RefreshTokenClaims): string {
  if (!UUID_PATTERN.test(sessionId)) throw new Error('A session id is a lower-case UUID')
  const body = Buffer.alloc(BODY_BYTES)
  body.writeUInt8(VERSION, 0)
  body.write(sessionId.replaceAll('-', ''), 1, SESSION_ID_BYTES, 'hex')
  body.writeUInt32BE(generation, 1 + SESSION_ID_BYTES)
  return Buffer.concat([body, tag(secret, body)]).toString('base64url')
}

/** The session and generation a token names, only if its tag verifies; undefined for anything else. */
export function readRefreshToken(secret: Buffer, token: string): RefreshTokenClaims | undefined {
  if (!TOKEN_PATTERN.test(token)) return undefined
  const bytes = Buffer.from(token, 'base64url')
  // One spelling per token: unused bits in the last character would decode to the same bytes.
  if (bytes.length !== TOKEN_BYTES || bytes.toString('base64url') !== token) return undefined
  const body = bytes.subarray(0, BODY_BYTES)
  if (body.readUInt8(0) !== VERSION || !timingSafeEqual(bytes.subarray(BODY_BYTES), tag(secret, body))) {
    return undefined
  }
  const hex = body.toString('hex', 1, 1 + SESSION_ID_BYTES)
  const sessionId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  return { sessionId, generation: body.readUInt32BE(1 + SESSION_ID_BYTES) }
}

// Legacy tokens (decision 0005), read until the last session started before the upgrade has ended.

const LEGACY_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

export function isLegacyRefreshToken(token: string): boolean {
  return LEGACY_TOKEN_PATTERN.test(token)
}

/** The successor the previous release derived from a legacy token at rotation. */
export function nextLegacyRefreshToken(secret: Buffer, token: string): string {
  return createHmac('sha256', secret).update(token).digest('base64url')
}

export function hashLegacyRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}
