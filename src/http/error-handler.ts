// Turns every error into application/problem+json. What the client sees (code, title, detail) is kept apart
// from what is logged (the cause, with its stack, for server errors only).
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { isDatabaseUnavailable } from '../db/database-errors.ts'
import { AppError, type FieldError, type ProblemCode, problemBody } from './problem.ts'

const FASTIFY_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed_request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_request',
}

type ValidationIssue = {
  instancePath: string
  keyword: string
  message?: string
  params: Record<string, unknown>
}

function fieldErrors(context: string, issues: ValidationIssue[]): FieldError[] {
  return issues.map((issue) => {
    let field = `/${context}${issue.instancePath}`
    let message = issue.message ?? 'is not valid'
    if (issue.keyword === 'required') field += `/${String(issue.params.missingProperty)}`
    if (issue.keyword === 'additionalProperties') {
      field += `/${String(issue.params.additionalProperty)}`
      message = 'is not an accepted field'
    }
    return { field, message }
  })
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: AppError): FastifyReply {
  const body = problemBody(error.code, error.message, request.url.split('?')[0] ?? '/', error.errors)
  return reply
    .code(error.status)
    .headers(error.headers)
    .type('application/problem+json; charset=utf-8')
    .send(JSON.stringify(body))
}

export function toAppError(error: FastifyError | Error): AppError {
  if (error instanceof AppError) return error
  const fastifyError = error as FastifyError & { validation?: ValidationIssue[] }
  if (fastifyError.validation) {
    const errors = fieldErrors(fastifyError.validationContext ?? 'body', fastifyError.validation)
    return new AppError('validation_failed', 'One or more fields are not valid; see errors.', { errors })
  }
  // An error with an HTTP status comes from Fastify (a client that hung up mid-body carries ECONNRESET too).
  if (fastifyError.statusCode === undefined && isDatabaseUnavailable(error)) {
    return new AppError('database_unavailable', undefined, { cause: error, headers: { 'retry-after': '1' } })
  }
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
