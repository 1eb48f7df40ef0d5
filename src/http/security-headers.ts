// The headers every answer carries, routed or refused before routing: no MIME sniffing, no Referer that leaks
// a URL onward, nothing kept by a cache (answers carry tokens and personal data; a route whose document is
// public says so itself, as the JWKS does), and HSTS when clients reach the server over https.
//
// Four constant headers, set once per request, rather than @fastify/helmet: helmet's defaults are for HTML
// pages (CSP, frame and cross-origin policies), it leaves out Cache-Control, sends HSTS over plain http
// unless told otherwise, and its hook does not run for answers Fastify's router or the HTTP parser refuse.

/** One year, without includeSubDomains: the auth server cannot speak for its sibling hosts. */
const HSTS = 'max-age=31536000'

/** The headers for a server reached at `publicUrl` (config.publicUrl). */
export function securityHeaders(publicUrl: string): Readonly<Record<string, string>> {
  return Object.freeze({
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    ...(new URL(publicUrl).protocol === 'https:' ? { 'strict-transport-security': HSTS } : {}),
  })
}
