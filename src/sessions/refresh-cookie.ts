// Browser mode: the refresh token travels in an HttpOnly cookie that scripts cannot read, scoped to /auth
// and SameSite=Strict. A request that authenticates with that cookie must also carry the X-Tessera-CSRF
// header: a cross-site form cannot set a custom header, and a cross-site script cannot without a CORS
// preflight that Tessera does not grant.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../http/problem.ts'

export const REFRESH_COOKIE = 'tessera_refresh_token'
export const CSRF_HEADER = 'x-tessera-csrf'
const COOKIE_PATH = '/auth'

function setRefreshCookie(reply: FastifyReply, token: string, maxAgeSeconds: number, secure: boolean): void {
  reply.setCookie(REFRESH_COOKIE, token, {
    httpOnly: true,
    secure,
    sameSite: 'strict',
    path: COOKIE_PATH,
    maxAge: maxAgeSeconds,
  })
}

/** Browser mode: the refresh token goes into the cookie, and the body keeps everything else. */
export function deliverInCookie<G extends { refresh_token: string; refresh_token_expires_in: number }>(
  reply: FastifyReply,
  grant: G,
  secure: boolean,
): Omit<G, 'refresh_token'> {
  setRefreshCookie(reply, grant.refresh_token, grant.refresh_token_expires_in, secure)
  const { refresh_token: _inCookie, ...body } = grant
  return body
}

export function clearRefreshCookie(reply: FastifyReply, secure: boolean): void {
  reply.clearCookie(REFRESH_COOKIE, { httpOnly: true, secure, sameSite: 'strict', path: COOKIE_PATH })
}

/**
 * The refresh token of a request: from the JSON body, or else from the cookie, which counts only with the
 * CSRF header (403 without it). Undefined when the request carries neither.
 */
export function readRefreshToken(
  request: FastifyRequest,
  fromBody: string | undefined,
): { token: string; fromCookie: boolean } | undefined {
  if (fromBody !== undefined) return { token: fromBody, fromCookie: false }
  // Parsed here, on the few routes that read it, rather than by a hook on every request (app.ts).
  const header = request.headers.cookie
  const cookie = header === undefined ? undefined : request.server.parseCookie(header)[REFRESH_COOKIE]
  if (cookie === undefined) return undefined
  if (!request.headers[CSRF_HEADER]) {
    throw new AppError(
      'csrf_check_failed',
      `Send the ${CSRF_HEADER} header with requests that use the refresh cookie`,
    )
  }
  return { token: cookie, fromCookie: true }
}
