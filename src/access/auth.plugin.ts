// Authentication is declared on each route, next to its schema, and the default is deny:
//   config: { auth: 'public' }              no token needed
//   (nothing)                               any valid access token
//   config: { auth: { roles: ['admin'] } }  a valid token whose user has at least one of these roles
// A route with a malformed auth setting or without a response schema stops the server from starting.
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
import { type AccessTokenClaims, invalidTokenError, type TokenService } from './token.service.ts'

export type RouteAuth = 'public' | { roles: string[] }

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
  const roles = (auth as { roles?: unknown } | null)?.roles
  const valid =
    typeof auth === 'object' &&
    Object.keys(auth as object).length === 1 &&
    Array.isArray(roles) &&
    roles.length > 0 &&
    roles.every((r) => typeof r === 'string' && r.length > 0)
  return valid
    ? undefined
    : `config.auth must be 'public', omitted, or { roles: [...] }; got ${JSON.stringify(auth)}`
}

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
export type Authenticate = (request: FastifyRequest, roles: string[] | undefined) => void | Promise<void>

export function createAuthenticator(
  tokens: TokenService,
  authStates: AuthStateCache,
  clock: Clock,
  sessionIdleTtlSeconds: number,
): Authenticate {
  // Plain functions that hand on a value or a promise of one, rather than async functions: an await costs a
  // promise and a trip through the microtask queue, which this path, taken by every request, need not pay.
  function admit(
    request: FastifyRequest,
    roles: string[] | undefined,
    claims: AccessTokenClaims,
    state: AccessState | undefined,
  ): void {
    if (!state || isRevoked(state, claims, epochSeconds(clock), sessionIdleTtlSeconds)) {
      throw invalidTokenError('The token has been revoked')
    }
    if (roles && !roles.some((role) => state.roles.includes(role))) {
      throw new AppError('insufficient_role', `This needs one of the roles: ${roles.join(', ')}`, {
        headers: { 'www-authenticate': 'Bearer error="insufficient_scope"' },
      })
    }
    request.auth = {
      userId: claims.sub,
      username: claims.username,
      roles: state.roles,
      tokenId: claims.jti,
      sessionId: claims.sid,
      expiresAt: claims.exp,
    }
  }

  function checkState(request: FastifyRequest, roles: string[] | undefined, claims: AccessTokenClaims) {
    const state = authStates.get(claims.sid)
    return state instanceof Promise
      ? state.then((loaded) => admit(request, roles, claims, loaded))
      : admit(request, roles, claims, state)
  }

  return function authenticate(request, roles) {
    const header = request.headers.authorization
    if (header === undefined) throw invalidTokenError('No bearer token was sent')
    const token = bearerToken(header)
    if (!token) throw invalidTokenError('The Authorization header is not "Bearer <token>"')
    const claims = tokens.verifyAccessToken(token)
    return claims instanceof Promise
      ? claims.then((verified) => checkState(request, roles, verified))
      : checkState(request, roles, claims)
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
      if (auth === 'public') return
      const roles = auth?.roles
      // A callback-style hook, so that a request authenticated without a promise goes on at once.
      const check = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
        let pending: void | Promise<void>
        try {
          pending = authenticate(request, roles)
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
        if (roles) responses['403'] ??= { $ref: 'Problem' }
      }
    })
  },
  { name: 'tessera-auth' },
)
