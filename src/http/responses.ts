// Shorthands for route schemas: the error statuses a route can answer, each a problem+json body, and the
// mark of a body that may be left out; and the errors every route can answer before its handler runs.
import type { RouteOptions } from 'fastify'
import { Type } from 'typebox'
import { BODY_LIMIT_BYTES, kib, MAX_HEADER_BYTES, MAX_PATH_PARAMETER_LENGTH } from './limits.ts'

export const ProblemRef = Type.Ref('Problem')

export function problems(...statuses: number[]): Record<number, typeof ProblemRef> {
  return Object.fromEntries(statuses.map((status) => [status, ProblemRef]))
}

/** On a body schema: the request may have no body at all (validated when it has one). */
export const OPTIONAL_BODY = 'x-optional-body'

/** The body of a 204 answer. */
export const NoContent = Type.Null({ description: 'No content' })

/** What a 400 declared for every route that reads a body or checks a parameter says, part by part. */
export const PRE_HANDLER_400 = {
  validation: '`validation_failed`: the request breaks its schema',
  malformed: '`malformed_request`: the body is not JSON, not UTF-8, or holds a lone surrogate or NUL',
}

const PRE_HANDLER_ERRORS = {
  413: Type.Ref('Problem', {
    description: `\`payload_too_large\`: the body is over ${kib(BODY_LIMIT_BYTES)}`,
  }),
  414: Type.Ref('Problem', {
    description: `\`uri_too_long\`: a path parameter is over ${MAX_PATH_PARAMETER_LENGTH} characters`,
  }),
  415: Type.Ref('Problem', { description: '`unsupported_media_type`: the body is not application/json' }),
  431: Type.Ref('Problem', {
    description: `\`headers_too_large\`: the request line and headers are over ${kib(MAX_HEADER_BYTES)}`,
  }),
}

/** Methods whose requests Fastify reads no body for; every other method's may be too large or not JSON. */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'TRACE'])

/**
 * Declares, for the OpenAPI document, the answers that come before any handler: 400 where a body is read (it
 * may not parse, even on a route that takes none) or the request has a schema, 413 and 415
 * where a body is read, 414 where the path has a parameter (the router's length limit), and 431 everywhere (the
 * HTTP parser's limit on headers). Called for every route by one onRoute hook (app.ts).
 */
export function declarePreHandlerErrors(route: RouteOptions): void {
  const responses = route.schema?.response as Record<string, unknown> | undefined
  if (!responses) return
  const readsBody = [route.method].flat().some((method) => !BODYLESS_METHODS.has(method))
  const checked = route.schema?.body || route.schema?.params || route.schema?.querystring
  if (readsBody || checked) {
    const said = [
      ...(checked ? [PRE_HANDLER_400.validation] : []),
      ...(readsBody ? [PRE_HANDLER_400.malformed] : []),
    ]
    responses['400'] ??= Type.Ref('Problem', { description: said.join('; or ') })
  }
  if (readsBody) {
    responses['413'] ??= PRE_HANDLER_ERRORS[413]
    responses['415'] ??= PRE_HANDLER_ERRORS[415]
  }
  if (/[:*]/.test(route.url)) responses['414'] ??= PRE_HANDLER_ERRORS[414]
  responses['431'] ??= PRE_HANDLER_ERRORS[431]
}

const PROBLEM_SCHEMA = '#/components/schemas/Problem'

type RequestBody = { required?: boolean; content?: Record<string, { schema?: Record<string, unknown> }> }

/**
 * A body marked OPTIONAL_BODY may be left out: the document says so (the swagger plugin marks every body
 * required). Applied once, to the document.
 */
export function withOptionalBodies<T>(document: T): T {
  const paths = (document as { paths?: Record<string, Record<string, { requestBody?: RequestBody }>> }).paths
  for (const operation of Object.values(paths ?? {}).flatMap((item) => Object.values(item))) {
    const body = operation.requestBody
    if (body?.content?.['application/json']?.schema?.[OPTIONAL_BODY] === true) body.required = false
  }
  return document
}

type Operation = { responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> }

/**
 * Problems are sent as application/problem+json; the OpenAPI document says so for every answer whose body is
 * the Problem schema (the swagger plugin would call them application/json). Applied once, to the document.
 */
export function withProblemMediaType<T>(document: T): T {
  const paths = (document as { paths?: Record<string, Record<string, Operation>> }).paths ?? {}
  for (const operation of Object.values(paths).flatMap((item) => Object.values(item))) {
    for (const response of Object.values(operation.responses ?? {})) {
      const json = response.content?.['application/json']
      if (json?.schema?.$ref !== PROBLEM_SCHEMA || !response.content) continue
      delete response.content['application/json']
      response.content['application/problem+json'] = json
    }
  }
  return document
}
