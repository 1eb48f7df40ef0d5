// The "device" a session counts as, for counts kept per device (the failed-login limit, the slowdown, the
// second-factor limit): checks made inside a signed-in session count for that session alone, so that a stolen
// session slows down only itself, and failures elsewhere never refuse the owner's session.
import { createHash } from 'node:crypto'

/** `s.` and 30 characters of the session id's SHA-256: apart from device token ids, and within their column. */
export const sessionDevice = (sessionId: string) =>
  `s.${createHash('sha256').update(sessionId).digest('base64url').slice(0, 30)}`
