// The API reference at /docs (DOCS_ENABLED): Swagger UI, rendered in the browser from the same OpenAPI document
// as /openapi.json, with its assets served from the npm package (@fastify/swagger-ui): no CDN. Registered before
// the policy hooks (app.ts): its pages are public, check no secret, and are not part of the API's document.
import type { FastifyInstance } from 'fastify'

export const API_REFERENCE_PATH = '/docs'

export async function serveApiReference(app: FastifyInstance, enabled: boolean): Promise<void> {
  if (!enabled) return
  // Loaded only when used (with @fastify/static under it): DOCS_ENABLED=false keeps them out of memory.
  const { default: swaggerUi } = await import('@fastify/swagger-ui')
  await app.register(swaggerUi, {
    routePrefix: API_REFERENCE_PATH,
    // Swagger UI's own validator badge calls validator.swagger.io: nothing leaves for another host.
    uiConfig: { validatorUrl: null, deepLinking: true, tryItOutEnabled: false },
    // A Content-Security-Policy on its pages (scripts from this origin and the hashes of its own).
    staticCSP: true,
    // Nothing from another host (the validator, https fonts); and no upgrade-insecure-requests, which would break
    // the page of a development server on plain-HTTP localhost (HSTS covers https deployments).
    transformStaticCSP: (header) =>
      header
        .replace(/ validator\.swagger\.io/g, '')
        .replace(/font-src 'self' https: data:/, "font-src 'self' data:")
        // Swagger UI sets style attributes: styles (never scripts) may be inline; none come from elsewhere.
        .replace(/style-src 'self' https:[^;]*;/, "style-src 'self' 'unsafe-inline';")
        .replace(/ ?upgrade-insecure-requests;?/, ''),
  })
}
