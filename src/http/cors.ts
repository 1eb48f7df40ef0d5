// Browser apps on other origins (CORS_ORIGINS): @fastify/cors answers preflights and marks answers for the
// allowed origins only, with credentials (the cookie mode) and the headers the API reads, the CSRF header
// included. An origin not on the list gets no CORS headers at all, so its scripts cannot read any answer, nor
// send the CSRF header that a cookie refresh needs. Without CORS_ORIGINS nothing is registered.
import type { FastifyInstance } from 'fastify'

/**
 * The header a request that authenticates with the refresh cookie must carry (sessions/refresh-cookie.ts): a
 * cross-site form cannot set it, and a script of another origin only after a preflight this grants.
 */
export const CSRF_HEADER = 'x-tessera-csrf'

/** How long a browser may keep a preflight's answer (seconds). */
const PREFLIGHT_MAX_AGE_SECONDS = 600

export async function allowOrigins(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return
  const allowed = new Set(origins)
  // Loaded only when used: a server without CORS_ORIGINS keeps the module out of its memory.
  const { default: cors } = await import('@fastify/cors')
  await app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', CSRF_HEADER],
    // What a client needs to read on a refusal: the step-up or token challenge, and how long to wait.
    exposedHeaders: ['WWW-Authenticate', 'Retry-After'],
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    // Preflights are answered by the plugin's own route, which has no policies to declare: kept out of the
    // OpenAPI document.
    hideOptionsRoute: true,
  })
}
