// buildApp: every Fastify option and plugin in one place, then the route modules (listed in modules.ts). The
// server and the tests both call it, so tests run the production app.

import { randomUUID } from 'node:crypto'
import swagger from '@fastify/swagger'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { authPlugin, createAuthenticator } from './access/auth.plugin.ts'
import { rateLimitPlugin } from './access/rate-limit.plugin.ts'
import type { Deps } from './deps.ts'
import { serveAccountPage } from './http/account-page.ts'
import { serveApiReference } from './http/api-reference.ts'
import { createClientErrorHandler } from './http/client-errors.ts'
import { allowOrigins } from './http/cors.ts'
import { errorHandler, sendProblem } from './http/error-handler.ts'
import { BODY_LIMIT_BYTES, MAX_PATH_PARAMETER_LENGTH } from './http/limits.ts'
import { AppError, Problem } from './http/problem.ts'
import {
  declarePreHandlerErrors,
  OPTIONAL_BODY,
  withOptionalBodies,
  withProblemMediaType,
} from './http/responses.ts'
import { securityHeaders } from './http/security-headers.ts'
import { createSharedSerializerFactory } from './http/shared-serializers.ts'
import { LOG_SERIALIZERS } from './lib/logger.ts'
import { observeRequests } from './metrics/http-metrics.ts'
import { isServed } from './metrics/metrics.ts'
import { routeModules } from './modules.ts'

declare module 'fastify' {
  interface FastifyInstance {
    deps: Deps
    /** Compiles every route's validators and serializers now, rather than on first use; throws an AggregateError
     * of those that cannot. */
    compileAllSchemas(): void
  }
}

// ajv-formats is CommonJS; its default export arrives as the module object under some loaders.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => Ajv

function createAjv(options: AjvOptions): Ajv {
  return addFormats(
    new Ajv({ allErrors: true, removeAdditional: false, useDefaults: true, strict: false, ...options }),
  )
}

/** Refuses bytes that are not UTF-8 rather than replacing them. A BOM is kept in the text; the JSON parser skips it. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * What is wrong with the text of a parsed body, if anything: a lone UTF-16 surrogate, which no valid Unicode
 * text contains, or a NUL character, which no PostgreSQL text column can hold (a name holding one was a 500).
 * Walked with a stack of its own, not by recursion: JSON nested some thousands deep, which parses, would
 * otherwise overflow the call stack and be answered as "not valid JSON" (an outside attack found it).
 */
function textProblem(body: unknown): string | undefined {
  const pending: unknown[] = [body]
  while (pending.length > 0) {
    const value = pending.pop()
    if (typeof value === 'string') {
      if (!value.isWellFormed()) return 'The body contains text that is not valid Unicode'
      if (value.includes('\0')) return 'The body contains a NUL character (\\u0000)'
    } else if (Array.isArray(value)) {
      // Pushed last first, so that they are checked in order: the first problem in the body is the one told.
      for (let i = value.length - 1; i >= 0; i--) pending.push(value[i])
    } else if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value)
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i] as [string, unknown]
        pending.push(item, key)
      }
    }
  }
  return undefined
}

export type BuildAppOptions = {
  deps: Deps
  /** Route modules to serve; defaults to the list in modules.ts. */
  modules?: FastifyPluginAsyncTypebox[]
  logger?: boolean
}

export async function buildApp({ deps, modules = routeModules, logger = true }: BuildAppOptions) {
  const { config } = deps
  const headers = securityHeaders(config.publicUrl)
  const serializers = createSharedSerializerFactory()
  const app = Fastify({
    logger:
      logger && config.logLevel !== 'silent'
        ? { level: config.logLevel, serializers: LOG_SERIALIZERS }
        : false,
    genReqId: () => randomUUID(),
    bodyLimit: BODY_LIMIT_BYTES,
    // Bounds how long a slow client can hold a connection while sending its request.
    requestTimeout: 30_000,
    // During a graceful shutdown, a request that arrives on an open keep-alive connection is served, with the
    // database still open, rather than answered Fastify's own 503 body that no renderer of ours sees.
    return503OnClosing: false,
    trustProxy: config.trustProxy,
    routerOptions: { maxParamLength: MAX_PATH_PARAMETER_LENGTH },
    // A path the router cannot decode or whose parameter is too long, answered before any hook runs; and a
    // request the HTTP parser refuses, answered on the socket. Both are problems like any other.
    frameworkErrors: (error, request, reply) => errorHandler(error, request, reply.headers(headers)),
    clientErrorHandler: createClientErrorHandler(headers),
    schemaController: { compilersFactory: { buildSerializer: serializers.factory } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Bodies are JSON and must already have the right types; query strings and path parameters are text, so
  // numbers there are coerced. Unknown fields are refused, never silently dropped.
  const bodyAjv = createAjv({ coerceTypes: false })
  const textAjv = createAjv({ coerceTypes: 'array' })
  // Compiled on a route's first request, not at start: a server compiles only what it serves (issue 19: the
  // validators and serializers of about 60 routes took 7.5 MB of heap at start). app.compileAllSchemas()
  // compiles every one, which a test does; docs/decisions/0019-memory-and-hot-path.md.
  const validatorCompilers: (() => unknown)[] = []
  app.decorate('compileAllSchemas', () => {
    const failures: unknown[] = []
    for (const compile of [...validatorCompilers, ...serializers.compilers]) {
      try {
        compile()
      } catch (error) {
        failures.push(error)
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `${failures.length} schema(s) cannot compile`)
  })
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? bodyAjv : textAjv
    // A route whose body may be left out entirely (a browser's cookie-only refresh, say). Fastify passes an
    // absent body as null.
    const optional = httpPart === 'body' && (schema as Record<string, unknown>)[OPTIONAL_BODY] === true
    let compiled: ValidateFunction | undefined
    const compile = () => {
      compiled ??= ajv.compile(schema)
      return compiled
    }
    const validate = (data: unknown, context?: Parameters<ValidateFunction>[1]) => {
      const check = compile()
      const valid = (optional && (data === undefined || data === null)) || (check(data, context) as boolean)
      validate.errors = check.errors
      return valid
    }
    validate.errors = undefined as ValidateFunction['errors']
    // Fastify hands a validator the request as the parent of the part it checks (so that Ajv may replace a whole
    // part it coerces) only when the validator has Ajv's schemaEnv: read from the compiled one, which Fastify
    // first asks for at the route's first request.
    Object.defineProperty(validate, 'schemaEnv', { get: () => compile().schemaEnv })
    validatorCompilers.push(compile)
    return validate
  })

  // JSON only: a text/plain body is refused (415) rather than handed to a schema as a string. A body must be
  // UTF-8, and its JSON text may not encode lone UTF-16 surrogates ("\ud800"), which no valid Unicode text
  // contains: decoding would silently turn either into U+FFFD, so that two different passwords would hash
  // alike. Nor may it hold NUL ("\u0000"), which PostgreSQL cannot store. Such a body is refused as malformed.
  app.removeContentTypeParser('text/plain')
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string
    try {
      text = utf8.decode(body as Buffer)
    } catch {
      return done(new AppError('malformed_request', 'The body is not valid UTF-8'), undefined)
    }
    parseJson(request as Parameters<typeof parseJson>[0], text, (error, value) => {
      if (error) return done(error, undefined)
      const problem = textProblem(value)
      if (problem) return done(new AppError('malformed_request', problem), undefined)
      done(null, value)
    })
  })

  app.decorate('deps', deps)
  app.decorateRequest('problemCode', undefined)
  // Set before the handler, so that a route whose document is public may replace the Cache-Control.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
  // The OpenAPI document lists the answers every route can give before its handler (400, 413, 414, 415, 431).
  app.addHook('onRoute', declarePreHandlerErrors)
  // Before any route is added, so that every one is observed; nothing at all when metrics are off.
  if (isServed(deps.metrics)) observeRequests(app, deps.metrics)
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      request,
      new AppError('not_found', `No route for ${request.method} ${request.url.split('?')[0]}`),
    ),
  )
  app.addSchema(Problem)

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tessera',
        version: '0.1.0',
        description: 'A JWT-secured REST API. Errors are application/problem+json (RFC 9457).',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: config.publicUrl }],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transformObject: (document) =>
      'openapiObject' in document
        ? withOptionalBodies(withProblemMediaType(document.openapiObject))
        : document.swaggerObject,
  })
  // Before the policy hooks below: the preflight route it adds has none to declare.
  await allowOrigins(app, config.corsOrigins)
  await serveApiReference(app, config.docsEnabled)
  await serveAccountPage(app, config.accountPageEnabled)
  // Policies declared on each route (auth, rate limits), checked when the route is added, enforced by hooks.
  const { tokens, authStates, rateLimits } = deps.access
  await app.register(authPlugin, {
    authenticate: createAuthenticator(tokens, authStates, deps.clock, {
      sessionIdleTtlSeconds: config.sessions.idleTtlSeconds,
      mfaRequiredRoles: config.mfa.requiredRoles,
    }),
  })
  await app.register(rateLimitPlugin, { limiters: rateLimits, limits: config.rateLimits })

  app.get(
    '/openapi.json',
    {
      config: { auth: 'public', rateLimit: { none: 'a public document, built once' } },
      schema: { hide: true, response: { 200: Type.Object({}, { additionalProperties: true }) } },
    },
    async () => app.swagger(),
  )
  for (const module of modules) await app.register(module)
  await app.ready()
  return app as unknown as FastifyInstance
}
