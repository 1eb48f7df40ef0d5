// GET /.well-known/jwks.json: the public keys other services verify Tessera's tokens with (never an HMAC
// key). GET /.well-known/openid-configuration and /.well-known/oauth-authorization-server: where to find
// them, for clients that discover keys from the issuer (RFC 8414).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

// Shorter than any access token's life, so verifiers see a new key well before a retired one disappears;
// verifiers also refetch when they meet an unknown kid.
const JWKS_MAX_AGE_SECONDS = 300

const Jwks = Type.Object({
  keys: Type.Array(
    Type.Object(
      {
        kty: Type.String(),
        kid: Type.String(),
        alg: Type.String(),
        use: Type.Literal('sig'),
        crv: Type.Optional(Type.String()),
        x: Type.Optional(Type.String()),
        y: Type.Optional(Type.String()),
        n: Type.Optional(Type.String()),
        e: Type.Optional(Type.String()),
      },
      { description: 'A public JWK (RFC 7517); private members are never serialized' },
    ),
  ),
})

// Only what is true of Tessera: it is not an OAuth authorization server with authorization or token
// endpoints, nor an OpenID provider issuing ID tokens. Verifiers need the issuer and where its keys are.
const Metadata = Type.Object({ issuer: Type.String(), jwks_uri: Type.String() })

export const jwksRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app.deps
  const { keyStore } = app.deps.access
  const base = config.publicUrl
  // Public documents that verifiers fetch and cache: no secret is checked, and the answer is in memory.
  const published = {
    auth: 'public',
    rateLimit: { none: 'a public, cacheable document served from memory' },
  } as const

  app.get(
    '/.well-known/jwks.json',
    {
      config: published,
      schema: {
        operationId: 'getJwks',
        tags: ['keys'],
        summary: 'Public signing keys (JWKS)',
        response: { 200: Jwks },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
      return { keys: keyStore.publicJwks() }
    },
  )

  const metadata = () => ({ issuer: config.jwt.issuer, jwks_uri: `${base}/.well-known/jwks.json` })
  for (const [path, operationId] of [
    ['/.well-known/openid-configuration', 'getOpenIdConfiguration'],
    ['/.well-known/oauth-authorization-server', 'getAuthorizationServerMetadata'],
  ] as const) {
    app.get(
      path,
      {
        config: published,
        schema: {
          operationId,
          tags: ['keys'],
          summary: 'Issuer metadata: where the signing keys are',
          response: { 200: Metadata },
        },
      },
      async (_request, reply) => {
        reply.header('cache-control', 'public, max-age=3600')
        return metadata()
      },
    )
  }
}
