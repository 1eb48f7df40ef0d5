// Browsers keep their device token (device-tokens.ts) in an HttpOnly cookie that scripts cannot read, set by a
// cookie-mode login and read by every login. Like the refresh cookie (sessions/refresh-cookie.ts): `__Host-`
// prefixed when Secure, SameSite as COOKIE_SAME_SITE says. It needs no CSRF header: it only ever exempts its holder from others'
// failures, and a forged login with it would still need the password.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CookiePolicy } from '../config/load-config.ts'
import { readCookies, setCookie } from '../http/cookies.ts'
import type { DeviceToken } from './device-tokens.ts'

function deviceCookie(secure: boolean): { name: string; path: string } {
  return secure ? { name: '__Host-tessera_device', path: '/' } : { name: 'tessera_device', path: '/auth' }
}

export function setDeviceCookie(reply: FastifyReply, device: DeviceToken, policy: CookiePolicy): void {
  const { name, path } = deviceCookie(policy.secure)
  setCookie(reply, name, device.token, {
    httpOnly: true,
    secure: policy.secure,
    sameSite: policy.sameSite,
    path,
    maxAge: device.expiresIn,
  })
}

/** The device token of a request's cookie, if it carries one (a malformed one is no token, not an error). */
export function readDeviceCookie(request: FastifyRequest, policy: CookiePolicy): string | undefined {
  const header = request.headers.cookie
  if (header === undefined) return undefined
  return readCookies(header)[deviceCookie(policy.secure).name]
}
