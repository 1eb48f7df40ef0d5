// Authentication is declared on each route, next to its schema, and the default is deny:
//   config: { auth: 'public' }              no token needed
//   (nothing)                               any valid access token
//   config: { auth: { roles: ['admin'] } }  a valid token whose user has at least one of these roles
//   config: { auth: { mfa: true } }         a token of a sign-in with a second factor
//   config: { auth: { maxAge: 300 } }       a token of a sign-in (or reauthentication) at most 300 s ago, with
//                                           the second factor when the user has one
// The keys combine. A token that falls short of `mfa` or `maxAge` gets the step-up challenge of RFC 9470 (401,
// `insufficient_user_authentication`); POST /auth/reauthenticate answers it. Roles named by MFA_REQUIRED_ROLES act
// only in tokens of a sign-in with a second factor. A route with a malformed auth setting or without a response
// schema stops the server from starting.
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RouteOptions,
} from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../http/problem.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import type { AccessState, AuthStateCache } from './auth-state.ts'
import {
  ACR_MFA,
  type AccessTokenClaims,
  hasSecondFactor,
  invalidTokenError,
  type TokenService,
} from './token.service.ts'

/** What a non-public route needs beyond a valid token; each key optional, at least one present. */
export type RoutePolicy = { roles?: string[]; mfa?: true; maxAge?: number }

export type RouteAuth = 'public' | RoutePolicy

/** The route config of the admin API. */
export const adminOnly: { auth: RouteAuth } = { auth: { roles: ['admin'] } }

export type AuthContext = {
  userId: string
  username: string
  /** The user's roles now, read with the revocation check; not the possibly older ones in the token. */
  roles: string[]
  tokenId: string
  /** The session the token belongs to (logout ends it). */
  sessionId: string
  expiresAt: number
}

/** The longest `maxAge` a route may declare: a day. */
const MAX_AGE_LIMIT = 86_400

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth
  }
  interface FastifyInstance {
    /**
     * Authenticates a request by hand, for a public route that accepts a token when one is sent. Returns a
     * promise only when it had to wait (for the database, say): call it with `await`, not `.then`.
     */
    authenticate: Authenticate
  }
  interface FastifyRequest {
    /** Set on every route that is not public; do not read it on a public route. */
    auth: AuthContext
  }
}

const BEARER = /^Bearer +([^\s]+) *$/i

/** The token of an `Authorization: Bearer <token>` header, or undefined when the header has another form. */
export function bearerToken(header: string): string | undefined {
  // The form clients send, told apart without the regex, which would scan the whole token on every request.
  // Other whitespace this lets into the token (a no-break space, say) cannot be in a verified token, so such a
  // token fails verification: 401 invalid_token as with the regex, with another detail.
  if (header.startsWith('Bearer ') && header.indexOf(' ', 7) < 0 && header.indexOf('\t', 7) < 0) {
    return header.length > 7 ? header.slice(7) : undefined
  }
  return BEARER.exec(header)?.[1]
}

/** Fails closed: Fastify takes done(undefined) as success, so a failure that is not an Error still is one. */
function asFailure(error: unknown): Error {
  return error instanceof Error ? error : new Error('Authentication failed', { cause: error })
}

function describeAuth(auth: unknown): string | undefined {
  if (auth === undefined || auth === 'public') return undefined
  const policy = (auth ?? {}) as Record<string, unknown>
  const keys = typeof auth === 'object' ? Object.keys(policy) : []
  const { roles, mfa, maxAge } = policy
  const valid =
    keys.length > 0 &&
    keys.every((key) => key === 'roles' || key === 'mfa' || key === 'maxAge') &&
    (roles === undefined ||
      (Array.isArray(roles) &&
        roles.length > 0 &&
        roles.every((r) => typeof r === 'string' && r.length > 0))) &&
    (mfa === undefined || mfa === true) &&
    (maxAge === undefined ||
      (Number.isSafeInteger(maxAge) && (maxAge as number) > 0 && (maxAge as number) <= MAX_AGE_LIMIT))
  return valid
    ? undefined
    : `config.auth must be 'public', omitted, or { roles?: [...], mfa?: true, maxAge?: seconds (1..${MAX_AGE_LIMIT}) }; got ${JSON.stringify(auth)}`
}

/**
 * RFC 9470's answer to a token whose authentication falls short: 401, `insufficient_user_authentication`, and
 * what would do (`acr_values`, `max_age`). A user without a second factor cannot step up to one:
 * `mfa_enrollment_required` (403) says to enrol first.
 */
function stepUp(state: AccessState, need: { mfa: boolean; maxAge?: number | undefined }): AppError {
  if (need.mfa && state.mfaEnabledAt === null) {
    return new AppError(
      'mfa_enrollment_required',
      'This needs a second factor: enrol one first (POST /auth/mfa/totp)',
      {
        headers: { 'www-authenticate': 'Bearer error="insufficient_scope"' },
      },
    )
  }
  const detail = need.mfa
    ? 'This needs a sign-in with your second factor: POST /auth/reauthenticate with your password and a code'
    : `This needs an authentication within the last ${need.maxAge} seconds: POST /auth/reauthenticate`
  const challenge = [
    'Bearer error="insufficient_user_authentication"',
    `error_description="${need.mfa ? 'A second factor is required' : 'A more recent authentication is required'}"`,
    ...(need.mfa ? [`acr_values="${ACR_MFA}"`] : []),
    ...(need.maxAge === undefined ? [] : [`max_age=${need.maxAge}`]),
  ].join(', ')
  return new AppError(need.mfa ? 'mfa_required' : 'reauthentication_required', detail, {
    headers: { 'www-authenticate': challenge },
  })
}

/**
 * Whether the token is of a sign-in with the second factor the user has now: one made with a factor removed
 * since (by the user, an admin or the operator), or before the present one was enrolled, counts for nothing, at
 * once, in the tokens already issued too. (A sign-in in the very second of the enrolment does not count either:
 * times are in seconds, and the doubt goes to asking again.)
 */
const withFactor = (state: AccessState, claims: AccessTokenClaims) =>
  state.mfaEnabledAt !== null && hasSecondFactor(claims) && (claims.auth_time ?? 0) > state.mfaEnabledAt

function isRevoked(state: AccessState, claims: AccessTokenClaims, now: number, idleTtl: number): boolean {
  return (
    state.userId !== claims.sub ||
    state.disabled ||
    state.tokenVersion !== claims.ver ||
    state.sessionRevoked ||
    state.sessionExpiresAt <= now ||
    state.sessionLastUsedAt + idleTtl <= now
  )
}

/**
 * Authenticates a request: sets `request.auth`, or throws (or rejects with) the problem to answer. Returns no
 * promise when the token and its session's state were both remembered, which is most requests.
 */
export type Authenticate = (request: FastifyRequest, policy: RoutePolicy | undefined) => void | Promise<void>

export type AuthenticatorOptions = {
  sessionIdleTtlSeconds: number
  /** MFA_REQUIRED_ROLES: roles that act only in tokens of a sign-in with a second factor. */
  mfaRequiredRoles: readonly string[]
}

export function createAuthenticator(
  tokens: TokenService,
  authStates: AuthStateCache,
  clock: Clock,
  { sessionIdleTtlSeconds, mfaRequiredRoles }: AuthenticatorOptions,
): Authenticate {
  const needMfa = new Set(mfaRequiredRoles)
  /** The roles the token acts with: the user's now, without those that need a second factor it lacks. */
  const rolesOf = (state: AccessState, claims: AccessTokenClaims) =>
    needMfa.size === 0 || withFactor(state, claims)
      ? state.roles
      : state.roles.filter((role) => !needMfa.has(role))

  /** Refuses a token whose authentication falls short of the route's `mfa` or `maxAge`, or of its roles. */
  function checkPolicy(policy: RoutePolicy, claims: AccessTokenClaims, state: AccessState, roles: string[]) {
    const { mfa = false, maxAge } = policy
    const twoFactor = withFactor(state, claims)
    if (policy.roles && !policy.roles.some((role) => roles.includes(role))) {
      // The user has the role, but it needs a second factor the token lacks (MFA_REQUIRED_ROLES).
      if (policy.roles.some((role) => state.roles.includes(role))) throw stepUp(state, { mfa: true })
      throw new AppError('insufficient_role', `This needs one of the roles: ${policy.roles.join(', ')}`, {
        headers: { 'www-authenticate': 'Bearer error="insufficient_scope"' },
      })
    }
    // A recent authentication of a user with a second factor is one with it.
    const needsFactor = !twoFactor && (mfa || (maxAge !== undefined && state.mfaEnabledAt !== null))
    // Tokens issued before issue 15 say no auth_time: never recent.
    const stale = maxAge !== undefined && (claims.auth_time ?? 0) + maxAge < epochSeconds(clock)
    if (needsFactor || stale) throw stepUp(state, { mfa: needsFactor, maxAge })
  }

  // Plain functions that hand on a value or a promise of one, rather than async functions: an await costs a
  // promise and a trip through the microtask queue, which this path, taken by every request, need not pay.
  function admit(
    request: FastifyRequest,
    policy: RoutePolicy | undefined,
    claims: AccessTokenClaims,
    state: AccessState | undefined,
  ): void {
    if (!state || isRevoked(state, claims, epochSeconds(clock), sessionIdleTtlSeconds)) {
      throw invalidTokenError('The token has been revoked')
    }
    const roles = rolesOf(state, claims)
    if (policy) checkPolicy(policy, claims, state, roles)
    request.auth = {
      userId: claims.sub,
      username: claims.username,
      roles,
      tokenId: claims.jti,
      sessionId: claims.sid,
      expiresAt: claims.exp,
    }
  }

  function checkState(request: FastifyRequest, policy: RoutePolicy | undefined, claims: AccessTokenClaims) {
    const state = authStates.get(claims.sid)
    return state instanceof Promise
      ? state.then((loaded) => admit(request, policy, claims, loaded))
      : admit(request, policy, claims, state)
  }

  return function authenticate(request, policy) {
    const header = request.headers.authorization
    if (header === undefined) throw invalidTokenError('No bearer token was sent')
    const token = bearerToken(header)
    if (!token) throw invalidTokenError('The Authorization header is not "Bearer <token>"')
    const claims = tokens.verifyAccessToken(token)
    return claims instanceof Promise
      ? claims.then((verified) => checkState(request, policy, verified))
      : checkState(request, policy, claims)
  }
}

export const authPlugin = fp(
  async (app: FastifyInstance, { authenticate }: { authenticate: Authenticate }) => {
    app.decorateRequest('auth', null as unknown as AuthContext)
    app.decorate('authenticate', authenticate)

    app.addHook('onRoute', (route: RouteOptions) => {
      const where = `${String(route.method)} ${route.url}`
      const problem = describeAuth(route.config?.auth)
      if (problem) throw new Error(`${where}: ${problem}`)
      const responses = route.schema?.response as Record<string, unknown> | undefined
      if (!responses || !Object.keys(responses).some((status) => /^2/.test(status))) {
        throw new Error(`${where}: every route needs a response schema for its success status`)
      }
      const auth = route.config?.auth
      if (auth === 'public') {
        // Said, so that the document does not read as "any security scheme" (a public route takes none).
        if (route.schema) route.schema.security ??= []
        return
      }
      const policy = auth
      // A callback-style hook, so that a request authenticated without a promise goes on at once.
      const check = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
        let pending: void | Promise<void>
        try {
          pending = authenticate(request, policy)
        } catch (error) {
          done(asFailure(error))
          return
        }
        if (!pending) return done()
        pending.then(
          () => done(),
          (error: unknown) => done(asFailure(error)),
        )
      }
      route.onRequest = [check, ...(route.onRequest ? [route.onRequest].flat() : [])]
      // The OpenAPI document says what the route needs, from the same declaration.
      if (route.schema) {
        route.schema.security = [{ bearerAuth: [] }]
        responses['401'] ??= { $ref: 'Problem' }
        if (policy?.roles || policy?.mfa) responses['403'] ??= { $ref: 'Problem' }
        const needs = [
          ...(policy?.mfa ? ['a sign-in with a second factor'] : []),
          ...(policy?.maxAge === undefined
            ? []
            : [`an authentication within ${policy.maxAge} s (with the second factor, if the user has one)`]),
        ]
        if (needs.length > 0) {
          const text =
            `Step-up: needs ${needs.join(' and ')}; otherwise 401 \`insufficient_user_authentication\` (RFC 9470), ` +
            'answered by POST /auth/reauthenticate' +
            (policy?.mfa
              ? ', or 403 `mfa_enrollment_required` for a user who has no second factor to step up with.'
              : '.')
          route.schema.description = route.schema.description
            ? `${route.schema.description}\n\n${text}`
            : text
          Object.assign(route.schema, {
            'x-step-up': { mfa: policy?.mfa ?? false, maxAge: policy?.maxAge ?? null },
          })
        }
      }
    })
  },
  { name: 'tessera-auth' },
)
