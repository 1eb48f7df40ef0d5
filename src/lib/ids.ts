// Identifiers generated in the application, never by the database, so every dialect stores the same text.
import { randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'

/** A time-ordered UUID (RFC 9562 version 7) for users and sessions: sorts by creation, which keyset pagination relies on. */
export function newId(): string {
  return uuidv7()
}

/** An unguessable identifier of the given entropy, base64url-encoded. */
export function randomToken(bytes = 16): string {
  return randomBytes(bytes).toString('base64url')
}
