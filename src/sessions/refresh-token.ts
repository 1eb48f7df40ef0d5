// Refresh tokens are opaque random values (256 bits), stored only as SHA-256 hashes. The token that replaces
// one at rotation is derived from it with HMAC under a server secret: so a repeat of the just-spent token
// (a second tab, a retried request) can be answered with the very same new token without ever storing a
// token in the clear, while nobody without the secret can compute the next token from a stolen one.
import { createHash, createHmac, randomBytes } from 'node:crypto'

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url')
}

export function nextRefreshToken(secret: Buffer, token: string): string {
  return createHmac('sha256', secret).update(token).digest('base64url')
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/** Refuses anything that cannot be one of our tokens before it reaches the database. */
export function isWellFormedRefreshToken(token: string): boolean {
  return TOKEN_PATTERN.test(token)
}
