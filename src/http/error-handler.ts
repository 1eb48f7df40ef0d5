// Turns every error into application/problem+json. What the client sees (code, title, detail) is kept apart
// from what is logged (the cause, with its stack, for server errors only). problemJson is the one rendering:
// routed errors, Fastify's own (a bad URL) and the HTTP parser's (written to the socket) all go through it.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { isDatabaseUnavailable } from '../db/database-errors.ts'
import { MAX_PATH_PARAMETER_LENGTH } from './limits.ts'
import { AppError, type FieldError, MAX_FIELD_ERRORS, type ProblemCode, problemBody } from './problem.ts'

const FASTIFY_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed_request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_request',
}

/** Fastify's router errors (its frameworkErrors), with a detail of our own: theirs echo the whole path. */
const ROUTER_ERRORS: Record<string, () => AppError> = {
  FST_ERR_BAD_URL: () =>
    new AppError('malformed_request', 'The path is not valid percent-encoded UTF-8 (RFC 3986)'),
  FST_ERR_MAX_PARAM_LENGTH: () =>
    new AppError(
      'uri_too_long',
      `A path parameter is longer than the ${MAX_PATH_PARAMETER_LENGTH} characters allowed`,
    ),
}

/** Codes whose answer carries the RFC 6750 challenge, whoever throws them. */
const BEARER_CHALLENGED = new Set<ProblemCode>(['invalid_token', 'token_expired'])

type ValidationIssue = {
  instancePath: string
  keyword: string
  message?: string
  params: Record<string, unknown>
}

/** One reference token of a JSON Pointer (RFC 6901 section 3): `~` is written `~0`, and `/` is `~1`. */
function pointerToken(name: unknown): string {
  return String(name).replaceAll('~', '~0').replaceAll('/', '~1')
}

function fieldErrors(context: string, issues: ValidationIssue[]): FieldError[] {
  // Ajv's instancePath is already a JSON Pointer; the property names it reports beside it are raw.
  return issues.map((issue) => {
    let field = `/${context}${issue.instancePath}`
    let message = issue.message ?? 'is not valid'
    if (issue.keyword === 'required') field += `/${pointerToken(issue.params.missingProperty)}`
    if (issue.keyword === 'additionalProperties') {
      field += `/${pointerToken(issue.params.additionalProperty)}`
      message = 'is not an accepted field'
    }
    return { field, message }
  })
}

/**
 * The text of `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 section 3), its description kept to
 * the characters a quoted error_description may hold.
 */
function bearerChallenge(detail: string): string {
  return `Bearer error="invalid_token", error_description="${detail.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '')}"`
}

/** The headers a problem is answered with: its own, and the bearer challenge where its code needs one. */
export function problemHeaders(error: AppError): Record<string, string> {
  if (!BEARER_CHALLENGED.has(error.code) || error.headers['www-authenticate'] !== undefined) {
    return error.headers
  }
  return { ...error.headers, 'www-authenticate': bearerChallenge(error.message) }
}

/** The one rendering of a problem+json body; `instance` is absent when the request line could not be read. */
export function problemJson(error: AppError, instance: string | undefined): string {
  return JSON.stringify(problemBody(error.code, error.message, instance, error.errors))
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The code of the problem this request was answered with, once it has been (read by onSend hooks). */
    problemCode: ProblemCode | undefined
  }
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: AppError): FastifyReply {
  request.problemCode = error.code
  return reply
    .code(error.status)
    .headers(problemHeaders(error))
    .type('application/problem+json; charset=utf-8')
    .send(problemJson(error, request.url.split('?')[0] ?? '/'))
}

export function toAppError(error: FastifyError | Error): AppError {
  if (error instanceof AppError) return error
  const fastifyError = error as FastifyError & { validation?: ValidationIssue[] }
  if (fastifyError.validation) {
    const errors = fieldErrors(fastifyError.validationContext ?? 'body', fastifyError.validation)
    const detail =
      errors.length > MAX_FIELD_ERRORS
        ? `${errors.length} fields are not valid; errors lists the first ${MAX_FIELD_ERRORS}.`
        : 'One or more fields are not valid; see errors.'
    return new AppError('validation_failed', detail, { errors })
  }
  // An error with an HTTP status comes from Fastify (a client that hung up mid-body carries ECONNRESET too).
  if (fastifyError.statusCode === undefined && isDatabaseUnavailable(error)) {
    return new AppError('database_unavailable', undefined, { cause: error, headers: { 'retry-after': '1' } })
  }
  const routerError = fastifyError.code ? ROUTER_ERRORS[fastifyError.code] : undefined
  if (routerError) return routerError()
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined
  if (mapped) return new AppError(mapped, fastifyError.message)
  const status = fastifyError.statusCode ?? 500
  if (status === 404) return new AppError('not_found')
  if (status === 413) return new AppError('payload_too_large')
  if (status === 415) return new AppError('unsupported_media_type')
  if (status >= 400 && status < 500) return new AppError('malformed_request', fastifyError.message)
  return new AppError('internal_error', 'An unexpected error occurred; it has been logged.', { cause: error })
}

export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const appError = toAppError(error)
  if (appError.code === 'database_unavailable') request.log.warn({ err: error }, 'database unavailable')
  // not_ready was logged by /ready itself, with its cause.
  else if (appError.status >= 500 && appError.code !== 'not_ready')
    request.log.error({ err: error }, 'request failed')
  return sendProblem(reply, request, appError)
}
