// The account page at /account (ACCOUNT_PAGE_ENABLED): plain files from the repository's account/ folder, the
// typed client among them (account/tessera-client.js, built from client/ by `npm run client:build`), served by
// @fastify/static under a Content-Security-Policy that allows this origin's scripts, styles and calls only (and
// data: images, the QR code). Registered before the policy hooks (app.ts), as /docs is: public files.
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'

export const ACCOUNT_PAGE_PATH = '/account/'

// fileURLToPath, not .pathname: an install path with a space would keep its %20 and find no file.
const ACCOUNT_DIR = fileURLToPath(new URL('../../account/', import.meta.url))

export const ACCOUNT_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ')

export async function serveAccountPage(app: FastifyInstance, enabled: boolean): Promise<void> {
  if (!enabled) return
  const { default: fastifyStatic } = await import('@fastify/static')
  await app.register(fastifyStatic, {
    root: ACCOUNT_DIR,
    prefix: ACCOUNT_PAGE_PATH,
    // /account answers with a redirect to /account/.
    redirect: true,
    index: ['index.html'],
    setHeaders: (response) => response.header('content-security-policy', ACCOUNT_PAGE_CSP),
    // Not the API: kept out of the OpenAPI document.
    schemaHide: true,
    decorateReply: false,
  })
  app.get('/account', { schema: { hide: true } }, (_request, reply) => reply.redirect(ACCOUNT_PAGE_PATH, 301))
}
