// The two cookies Tessera sets (sessions/refresh-cookie.ts, auth/device-cookie.ts), written and read with the
// `cookie` package (jshttp) that @fastify/cookie is built on, without the plugin: the plugin adds an onSend hook
// to every route and cookie state to every request and reply, which cost every request about 3% of its rate in
// the bench (decision 0019), for the three routes that set a cookie. Fastify keeps each Set-Cookie header of a
// reply.
import { parseCookie, type SetCookie, stringifySetCookie } from 'cookie'
import type { FastifyReply } from 'fastify'

export type CookieOptions = Omit<SetCookie, 'name' | 'value'>

export function setCookie(reply: FastifyReply, name: string, value: string, options: CookieOptions): void {
  reply.header('set-cookie', stringifySetCookie({ ...options, name, value }))
}

/** Tells the browser to drop the cookie: empty, expired, with the attributes it was set with. */
export function clearCookie(reply: FastifyReply, name: string, options: CookieOptions): void {
  setCookie(reply, name, '', { ...options, expires: new Date(0), maxAge: 0 })
}

/** The cookies of a Cookie header, by name (the first of a repeated name). */
export function readCookies(header: string): Record<string, string | undefined> {
  return parseCookie(header)
}
