// Identifiers generated in the application, never by the database, so every dialect stores the same text; and
// the client address as it is stored.
import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { v7 as uuidv7 } from 'uuid'

/** A time-ordered UUID (RFC 9562 version 7) for users and sessions: sorts by creation, which keyset pagination relies on. */
export function newId(): string {
  return uuidv7()
}

/** An unguessable identifier of the given entropy, base64url-encoded. */
export function randomToken(bytes = 16): string {
  return randomBytes(bytes).toString('base64url')
}

// An address is stored in 64 characters. An IPv6 zone (`fe80::1%eth0`) says which interface of the proxy
// it came through, which is not the client's to tell: it is dropped, and so is anything that is not an address.
const MAX_ADDRESS_LENGTH = 64

/** A client address as stored with a session or an event: a valid IP without its zone, or null. */
export function storableAddress(ip: string | undefined): string | null {
  const address = ip?.split('%')[0]
  return address && isIP(address) && address.length <= MAX_ADDRESS_LENGTH ? address : null
}
