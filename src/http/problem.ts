// The closed list of error codes a client can see, and AppError, which handlers throw. One error handler
// (error-handler.ts) renders them as RFC 9457 application/problem+json.
import { Type } from 'typebox'

export const PROBLEMS = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  malformed_request: { status: 400, title: 'The request could not be parsed' },
  invalid_current_password: { status: 400, title: 'The current password is not correct' },
  invalid_credentials: { status: 401, title: 'Username or password is not correct' },
  invalid_code: { status: 400, title: 'The code is not right' },
  reauthentication_failed: { status: 400, title: 'The password or the second-factor code is not right' },
  invalid_mfa_code: {
    status: 401,
    title:
      'The code is not right, or the MFA token is not valid (used, expired or unknown): sign in again if it keeps failing',
  },
  mfa_required: { status: 401, title: 'This needs a sign-in with a second factor' },
  reauthentication_required: { status: 401, title: 'This needs a more recent authentication' },
  invalid_reset_token: {
    status: 400,
    title: 'The reset token is not valid: it was used, has expired, or was replaced by a newer one',
  },
  invalid_token: { status: 401, title: 'The access token is missing, malformed, revoked or not valid' },
  token_expired: { status: 401, title: 'The access token has expired' },
  invalid_refresh_token: { status: 401, title: 'The refresh token is missing, unknown or revoked' },
  refresh_token_reused: { status: 401, title: 'The refresh token was already used; the session is revoked' },
  session_expired: { status: 401, title: 'The session has expired; sign in again' },
  insufficient_role: { status: 403, title: 'This action needs a role the user does not have' },
  mfa_enrollment_required: { status: 403, title: 'This needs a second factor, and the user has none yet' },
  csrf_check_failed: { status: 403, title: 'A cookie-authenticated request needs the X-Tessera-CSRF header' },
  not_found: { status: 404, title: 'Not found' },
  user_not_found: { status: 404, title: 'No such user' },
  session_not_found: { status: 404, title: 'No such active session' },
  request_timeout: { status: 408, title: 'The request did not arrive in time' },
  username_taken: { status: 409, title: 'That username is already taken' },
  last_admin: { status: 409, title: 'The change would leave no enabled admin' },
  mfa_already_enabled: { status: 409, title: 'A second factor is already enabled: remove it first' },
  mfa_not_enabled: { status: 409, title: 'No second factor is enabled' },
  no_mfa_enrollment: { status: 409, title: 'No enrolment is waiting for its code: start it again' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  uri_too_long: { status: 414, title: 'A part of the request path is too long' },
  unsupported_media_type: { status: 415, title: 'The request body must be application/json' },
  rate_limited: { status: 429, title: 'Too many requests' },
  login_slowed_down: {
    status: 429,
    title: 'Failed logins from this device slowed its logins down; try again after Retry-After seconds',
  },
  headers_too_large: { status: 431, title: 'The request headers are too large' },
  internal_error: { status: 500, title: 'Something went wrong on our side' },
  not_ready: { status: 503, title: 'The service is not ready' },
  database_unavailable: { status: 503, title: 'The database is not reachable right now; try again shortly' },
} as const satisfies Record<string, { status: number; title: string }>

export type ProblemCode = keyof typeof PROBLEMS

export type FieldError = { field: string; message: string }

/** A problem lists at most this many invalid fields, and counts the rest in `errorsOmitted`. */
export const MAX_FIELD_ERRORS = 20

// Not writable under --frozen-intrinsics, where AppError then keeps its stack.
const STACK_TRACE_LIMIT_WRITABLE =
  Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')?.writable === true

export class AppError extends Error {
  readonly code: ProblemCode
  readonly status: number
  readonly errors: FieldError[] | undefined
  readonly headers: Record<string, string>

  constructor(
    code: ProblemCode,
    detail?: string,
    options: { errors?: FieldError[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    const message = detail ?? PROBLEMS[code].title
    const cause = options.cause
    // No stack: an AppError is an answer to the client, named by its code, not a fault to trace, and capturing
    // a stack is most of its cost (about 5 us of 6 here), paid by every 401 and 429 of a flood. Errors that
    // are faults keep theirs, and are logged with it (as a cause, when one is wrapped).
    if (STACK_TRACE_LIMIT_WRITABLE) {
      const stackTraceLimit = Error.stackTraceLimit
      Error.stackTraceLimit = 0
      try {
        super(message, { cause })
      } finally {
        Error.stackTraceLimit = stackTraceLimit
      }
    } else {
      super(message, { cause })
    }
    this.name = 'AppError'
    this.code = code
    this.status = PROBLEMS[code].status
    this.errors = options.errors
    this.headers = options.headers ?? {}
  }
}

/** The problem+json body, declared once so that every route's error responses are documented. */
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'A URI naming the problem type: urn:tessera:problem:<code>' }),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable machine-readable error code', enum: Object.keys(PROBLEMS) }),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(
      Type.String({ description: 'The request path (absent when the request could not be read)' }),
    ),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String({
            description: 'JSON Pointer (RFC 6901) to the offending input, such as /body/password',
          }),
          message: Type.String(),
        }),
        { maxItems: MAX_FIELD_ERRORS, description: `The first ${MAX_FIELD_ERRORS} invalid fields` },
      ),
    ),
    errorsOmitted: Type.Optional(
      Type.Integer({ minimum: 1, description: 'How many more invalid fields there were than errors lists' }),
    ),
  },
  { $id: 'Problem', title: 'Problem' },
)

export function problemBody(
  code: ProblemCode,
  detail: string,
  instance: string | undefined,
  errors?: FieldError[],
) {
  // A body with thousands of bad fields gets a short answer: the first few, and how many more there were.
  const omitted = errors ? errors.length - MAX_FIELD_ERRORS : 0
  return {
    type: `urn:tessera:problem:${code}`,
    title: PROBLEMS[code].title,
    status: PROBLEMS[code].status,
    code,
    detail,
    ...(instance === undefined ? {} : { instance }),
    ...(errors ? { errors: omitted > 0 ? errors.slice(0, MAX_FIELD_ERRORS) : errors } : {}),
    ...(omitted > 0 ? { errorsOmitted: omitted } : {}),
  }
}
