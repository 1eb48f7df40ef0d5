// Requests Node's HTTP parser refuses before Fastify sees them (an unknown method, a duplicate Content-Length,
// a NUL in a header, headers too large, a request too slow to arrive). No reply object exists, so the answer
// is written to the socket by hand, with the same problem+json body and headers as every other error.
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionError, FastifyInstance } from 'fastify'
import { problemJson } from './error-handler.ts'
import { kib, MAX_HEADER_BYTES } from './limits.ts'
import { AppError } from './problem.ts'

/** What the client is told, by llhttp's error code; anything else is malformed_request in general words. */
const PARSER_ERRORS: Record<string, () => AppError> = {
  ERR_HTTP_REQUEST_TIMEOUT: () => new AppError('request_timeout'),
  HPE_HEADER_OVERFLOW: () =>
    new AppError(
      'headers_too_large',
      `The request line and headers together must fit in ${kib(MAX_HEADER_BYTES)}`,
    ),
  HPE_INVALID_METHOD: () => new AppError('malformed_request', 'The request method is not one HTTP/1.1 knows'),
  HPE_UNEXPECTED_CONTENT_LENGTH: () =>
    new AppError('malformed_request', 'Content-Length must be sent at most once'),
  HPE_INVALID_CONTENT_LENGTH: () => new AppError('malformed_request', 'Content-Length is not a number'),
  HPE_INVALID_TRANSFER_ENCODING: () =>
    new AppError(
      'malformed_request',
      'Transfer-Encoding must end in chunked, and is not sent together with Content-Length',
    ),
  HPE_INVALID_HEADER_TOKEN: () =>
    new AppError('malformed_request', 'A header name or value holds a character HTTP does not allow'),
  HPE_INVALID_CHUNK_SIZE: () => new AppError('malformed_request', 'A chunk size in the body is not valid'),
  HPE_INVALID_VERSION: () => new AppError('malformed_request', 'The HTTP version is not valid'),
}

function clientErrorProblem(code: string): AppError {
  return PARSER_ERRORS[code]?.() ?? new AppError('malformed_request', 'The request is not valid HTTP/1.1')
}

/** Fastify's clientErrorHandler: `headers` are the security headers every answer carries. */
export function createClientErrorHandler(headers: Readonly<Record<string, string>>) {
  const headerLines = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')
  return function clientErrorHandler(this: FastifyInstance, error: ConnectionError, socket: Socket) {
    // A connection the client reset has no one to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return
    const problem = clientErrorProblem(error.code)
    this.log.debug({ err: error }, 'the HTTP parser refused a request')
    // As Node's own handler does: answer unless a response on this connection has begun, which an answer
    // written now would corrupt.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
    if (socket.writable && !inFlight?.headersSent) {
      const body = problemJson(problem, undefined)
      socket.write(
        `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n` +
          'content-type: application/problem+json; charset=utf-8\r\n' +
          `content-length: ${Buffer.byteLength(body)}\r\n` +
          'connection: close\r\n' +
          `${headerLines}\r\n${body}`,
      )
    }
    socket.destroy(error)
  }
}
