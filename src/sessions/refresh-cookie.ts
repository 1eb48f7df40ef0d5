// Browser mode: the refresh token travels in an HttpOnly cookie that scripts cannot read, SameSite=Strict
// unless COOKIE_SAME_SITE says otherwise. A request that authenticates with that cookie must also carry the
// X-Tessera-CSRF header: a cross-site form cannot set a custom header, and a cross-site script cannot without
// a CORS preflight, which Tessera grants only to the origins of CORS_ORIGINS. When Secure, the cookie is `__Host-` prefixed (Secure, Path=/, no Domain, RFC 6265bis 4.1.3.2):
// a sibling subdomain cannot plant one of that name, and a request carrying two is refused, not guessed at.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CookiePolicy } from '../config/load-config.ts'
import { clearCookie, readCookies, setCookie } from '../http/cookies.ts'
import { CSRF_HEADER } from '../http/cors.ts'
import { AppError } from '../http/problem.ts'

/**
 * The cookie's name and path. `__Host-` requires Secure and Path=/; browsers refuse it over plain HTTP, so a
 * localhost development server keeps the unprefixed name, scoped to /auth as before.
 */
export function refreshCookie(secure: boolean): { name: string; path: string } {
  return secure
    ? { name: '__Host-tessera_refresh_token', path: '/' }
    : { name: 'tessera_refresh_token', path: '/auth' }
}

function setRefreshCookie(
  reply: FastifyReply,
  token: string,
  maxAgeSeconds: number,
  policy: CookiePolicy,
): void {
  const { name, path } = refreshCookie(policy.secure)
  setCookie(reply, name, token, {
    httpOnly: true,
    secure: policy.secure,
    sameSite: policy.sameSite,
    path,
    maxAge: maxAgeSeconds,
  })
}

/** Browser mode: the refresh token goes into the cookie, and the body keeps everything else. */
export function deliverInCookie<G extends { refresh_token: string; refresh_token_expires_in: number }>(
  reply: FastifyReply,
  grant: G,
  policy: CookiePolicy,
): Omit<G, 'refresh_token'> {
  setRefreshCookie(reply, grant.refresh_token, grant.refresh_token_expires_in, policy)
  const { refresh_token: _inCookie, ...body } = grant
  return body
}

export function clearRefreshCookie(reply: FastifyReply, policy: CookiePolicy): void {
  const { name, path } = refreshCookie(policy.secure)
  clearCookie(reply, name, { httpOnly: true, secure: policy.secure, sameSite: policy.sameSite, path })
}

/**
 * How many cookies of this name the Cookie header carries (a parsed header keeps only one of them). Names are
 * trimmed as the parser (http/cookies.ts) trims them: `name =x` is the same cookie as `name=x`.
 */
function countCookies(header: string, name: string): number {
  let count = 0
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=')
    if (equals >= 0 && pair.slice(0, equals).trim() === name) count++
  }
  return count
}

/**
 * The refresh token of a request: from the JSON body, or else from the cookie, which counts only with the
 * CSRF header (403 without it). Undefined when the request carries neither.
 */
export function readRefreshToken(
  request: FastifyRequest,
  fromBody: string | undefined,
  policy: CookiePolicy,
): { token: string; fromCookie: boolean } | undefined {
  if (fromBody !== undefined) return { token: fromBody, fromCookie: false }
  // Parsed here, on the few routes that read it, rather than by a hook on every request.
  const header = request.headers.cookie
  if (header === undefined) return undefined
  const { name } = refreshCookie(policy.secure)
  if (countCookies(header, name) > 1) {
    throw new AppError(
      'malformed_request',
      `The request carries more than one ${name} cookie; clear this site's cookies and sign in again`,
    )
  }
  const cookie = readCookies(header)[name]
  if (cookie === undefined) return undefined
  if (!request.headers[CSRF_HEADER]) {
    throw new AppError(
      'csrf_check_failed',
      `Send the ${CSRF_HEADER} header with requests that use the refresh cookie`,
    )
  }
  return { token: cookie, fromCookie: true }
}
