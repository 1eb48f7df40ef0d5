// Rate limits are declared on each route, beside `auth`, and one hook enforces them:
//   config: { rateLimit: ['loginPerIp', 'loginPerUsername'] }   count these (see LIMIT_RULES)
//   config: { rateLimit: { none: 'why no limit is needed' } }   count nothing, and say why
// The default is deny: a public route, or one whose body carries a secret, that declares neither stops the
// server from starting. The OpenAPI document shows each route's limits and its 429 answer.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { RateLimits } from '../config/load-config.ts'
import { addressKey, type RateLimiters } from '../rate-limits/rate-limiter.ts'
import { sessionDevice } from './session-device.ts'
import { usernameKey } from './username.ts'

export type LimitName = Exclude<keyof RateLimits, 'windowSeconds'>

export type RouteRateLimit = LimitName[] | { none: string }

type LimitRule = {
  /** What one count stands for, as the OpenAPI document says it. */
  per: 'client address' | 'account' | 'signed-in user' | 'session'
  /** What the key is read from: a route that cannot supply it does not start. */
  needs?: 'a signed-in user' | 'a username in the body, or a signed-in user'
  /**
   * The key the hook counts, from the validated (and, off public routes, authenticated) request; absent for
   * a key that only the handler can know, which it counts with `request.countLimit(name, key)`.
   */
  key?: (request: FastifyRequest) => string
  /**
   * `failures`: counted before the handler, so that parallel guesses cannot slip past the limit, and given
   * back unless the answer refuses the request (a 4xx other than 429, and other than `validation_failed`,
   * which is answered before any secret is checked): only failed attempts add up.
   * `rotations`: counted by the handler, for fresh rotations only (see sessions.routes.ts).
   */
  counts: 'requests' | 'failures' | 'rotations'
  /**
   * A second key each count also adds to, which never refuses the request: what one client's failures cost the
   * others that share that key, without the others' failures costing this client anything.
   */
  alsoCounts?: (request: FastifyRequest) => string | undefined
}

const byAddress = (request: FastifyRequest) => addressKey(request.ip)
const ACCOUNT = 'a username in the body, or a signed-in user'
/** The account a request is about: the signed-in user's, else the username in the body. */
const byAccount = (request: FastifyRequest) =>
  usernameKey(request.auth?.username ?? (request.body as { username: string }).username)
/**
 * The account, and the device: the one whose token a login carries, or the session a signed-in request is
 * made in. Each is counted apart from the others, so that failures elsewhere (a flood of wrong passwords at
 * the login form, say) never refuse the owner's device or session.
 */
const byAccountAndDevice = (request: FastifyRequest) => {
  const device = request.auth ? sessionDevice(request.auth.sessionId) : request.loginDevice
  return device === undefined ? byAccount(request) : `${byAccount(request)} ${device}`
}

/** Every limit a route can name: what it counts, and by which key. Its size is a setting (RATE_LIMIT_*). */
export const LIMIT_RULES: Record<LimitName, LimitRule> = {
  loginPerIp: { per: 'client address', key: byAddress, counts: 'requests' },
  loginPerUsername: {
    per: 'account',
    needs: ACCOUNT,
    key: byAccountAndDevice,
    counts: 'failures',
    // A wrong password in a session (a stolen access token) also counts for the clients without a device token
    // at the login form: it gives no more guesses than the form. The form's failures never refuse the session.
    alsoCounts: (request) => (request.auth ? byAccount(request) : undefined),
  },
  registerPerIp: { per: 'client address', key: byAddress, counts: 'requests' },
  registerPerUsername: { per: 'account', needs: ACCOUNT, key: byAccount, counts: 'requests' },
  refreshPerIp: { per: 'client address', key: byAddress, counts: 'requests' },
  refreshPerSession: { per: 'session', counts: 'rotations' },
  passwordChangePerUser: {
    per: 'signed-in user',
    needs: 'a signed-in user',
    key: (request) => request.auth.userId,
    counts: 'requests',
  },
  passwordChangePerIp: { per: 'client address', key: byAddress, counts: 'requests' },
  passwordResetPerIp: { per: 'client address', key: byAddress, counts: 'requests' },
  passwordResetPerUsername: { per: 'account', needs: ACCOUNT, key: byAccount, counts: 'requests' },
  mfaPerIp: { per: 'client address', key: byAddress, counts: 'requests' },
  // Keyed by the user whose code is checked, which only the handler knows (a login's second step names its
  // user by its MFA token): counted before each check, given back when the code was right.
  mfaPerAccount: { per: 'account', counts: 'failures' },
}

declare module 'fastify' {
  interface FastifyContextConfig {
    rateLimit?: RouteRateLimit
  }
  interface FastifyRequest {
    /**
     * Counts one request under a limit the route declared but whose key only the handler knows. Resolves
     * with the function that gives it back (the work it guarded turned out not to happen).
     */
    countLimit(name: LimitName, key: string): Promise<() => Promise<void>>
    /**
     * The device whose token (valid for the username) a login carries, set by the login route before the
     * limits count: loginPerUsername counts it apart from the clients without one.
     */
    loginDevice: string | undefined
    /** The failure-counted limits this request consumed, to give back unless it is refused. */
    consumedFailures: [LimitName, string][] | undefined
  }
}

const SECRET_NAME = /password|secret|token/i

/**
 * Whether a request schema (body, query string, path or headers) carries a secret anywhere: a property
 * marked writeOnly, or named like a password, secret or token, however deeply nested or in any branch.
 */
function carriesSecret(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(carriesSecret)
  if (schema === null || typeof schema !== 'object') return false
  const node = schema as Record<string, unknown>
  if (node.writeOnly === true) return true
  const properties = node.properties
  if (properties !== null && typeof properties === 'object') {
    if (Object.keys(properties).some((name) => SECRET_NAME.test(name))) return true
  }
  return Object.values(node).some(carriesSecret)
}

/** Whether a body schema requires a `username`. */
function requiresUsername(body: unknown): boolean {
  const { required, properties } = (body ?? {}) as {
    required?: unknown
    properties?: Record<string, unknown>
  }
  return Array.isArray(required) && required.includes('username') && properties?.username !== undefined
}

function describeProblem(route: RouteOptions, declared: unknown): string | undefined {
  const isPublic = route.config?.auth === 'public'
  if (declared === undefined) {
    if (isPublic) return 'a public route must declare config.rateLimit'
    const { body, querystring, params, headers } = route.schema ?? {}
    if (carriesSecret([body, querystring, params, headers])) {
      return 'a route that checks a secret must declare config.rateLimit'
    }
    return undefined
  }
  if (Array.isArray(declared)) {
    const unknown = declared.filter((name) => !Object.hasOwn(LIMIT_RULES, name))
    if (declared.length === 0) return "config.rateLimit names no limit; say { none: '<reason>' } instead"
    if (unknown.length > 0) return `config.rateLimit names unknown limits: ${unknown.join(', ')}`
    if (new Set(declared).size !== declared.length) return 'config.rateLimit names a limit twice'
    // A key the route cannot supply would fail every request (500): refuse the route instead.
    const unkeyed = (declared as LimitName[]).find((name) => {
      const { needs } = LIMIT_RULES[name]
      if (needs === undefined || !isPublic) return false
      return needs === 'a signed-in user' || !requiresUsername(route.schema?.body)
    })
    if (unkeyed) return `config.rateLimit names ${unkeyed}, which needs ${LIMIT_RULES[unkeyed].needs}`
    return undefined
  }
  const reason = (declared as { none?: unknown } | null)?.none
  if (
    typeof reason === 'string' &&
    reason.trim().length > 0 &&
    Object.keys(declared as object).length === 1
  ) {
    return undefined
  }
  return `config.rateLimit must be a list of limits or { none: '<reason>' }; got ${JSON.stringify(declared)}`
}

function describeLimits(names: LimitName[], limits: RateLimits): string {
  const window = limits.windowSeconds
  return names
    .map((name) => {
      const rule = LIMIT_RULES[name]
      const size = limits[name] === 0 ? 'off' : `${limits[name]} ${rule.counts} per ${window} s`
      return `\`${name}\` (${size} per ${rule.per})`
    })
    .join(', ')
}

const RETRY_AFTER = {
  'Retry-After': { type: 'integer', minimum: 1, description: 'Seconds to wait before trying again' },
}

export const rateLimitPlugin = fp(
  async (app: FastifyInstance, { limiters, limits }: { limiters: RateLimiters; limits: RateLimits }) => {
    app.decorateRequest('countLimit', async function countLimit(this: FastifyRequest, name: LimitName) {
      throw new Error(`${this.routeOptions.url} does not declare the limit ${name}`)
    })
    app.decorateRequest('consumedFailures', undefined)
    app.decorateRequest('loginDevice', undefined)

    app.addHook('onRoute', (route: RouteOptions) => {
      const declared = route.config?.rateLimit
      const problem = describeProblem(route, declared)
      if (problem) throw new Error(`${String(route.method)} ${route.url}: ${problem}`)
      if (!Array.isArray(declared)) return
      const names = declared
      const counted = names.filter((name) => LIMIT_RULES[name].key)
      const failures = counted.filter((name) => LIMIT_RULES[name].counts === 'failures')
      const byHandler = new Set(names.filter((name) => !LIMIT_RULES[name].key))

      // Counted after validation and authentication, so that keys come from a checked request.
      const count = async (request: FastifyRequest) => {
        if (byHandler.size > 0) {
          request.countLimit = async (name, key) => {
            if (!byHandler.has(name)) throw new Error(`${route.url} does not declare the limit ${name}`)
            await limiters[name].consume(key)
            return () => limiters[name].refund(key)
          }
        }
        const consumed: [LimitName, string][] = []
        request.consumedFailures = consumed
        for (const name of counted) {
          const key = (LIMIT_RULES[name].key as (request: FastifyRequest) => string)(request)
          await limiters[name].consume(key)
          if (failures.includes(name)) consumed.push([name, key])
          const shared = LIMIT_RULES[name].alsoCounts?.(request)
          if (shared !== undefined) {
            await limiters[name].penalize(shared)
            if (failures.includes(name)) consumed.push([name, shared])
          }
        }
      }
      route.preHandler = [count, ...(route.preHandler ? [route.preHandler].flat() : [])]
      if (failures.length > 0) {
        // Only a refusal of the request itself counts as a failure: a success, a 429 (the request was not
        // tried), an invalid input (nothing was checked) and a server fault are given back.
        const refund = (
          request: FastifyRequest,
          reply: FastifyReply,
          payload: unknown,
          done: (error: Error | null, payload: unknown) => void,
        ) => {
          const status = reply.statusCode
          const refused =
            status >= 400 && status < 500 && status !== 429 && request.problemCode !== 'validation_failed'
          const consumed = request.consumedFailures
          // Taken once: a refund must not run twice if the answer is rendered again.
          request.consumedFailures = undefined
          if (refused || !consumed || consumed.length === 0) return done(null, payload)
          // A refund that fails costs the account one attempt of its window; it does not fail the answer.
          Promise.all(consumed.map(([name, key]) => limiters[name].refund(key))).then(
            () => done(null, payload),
            (error: unknown) => {
              request.log.warn({ err: error }, 'a rate-limit refund failed')
              done(null, payload)
            },
          )
        }
        route.onSend = [refund, ...(route.onSend ? [route.onSend].flat() : [])]
      }
      // The OpenAPI document says what the route counts, from the same declaration.
      if (route.schema) {
        // Present: the auth plugin refuses a route without a response schema before this runs.
        const responses = route.schema.response as Record<string, unknown>
        responses['429'] = {
          $ref: 'Problem',
          description: 'Too many requests: wait the Retry-After seconds',
          headers: RETRY_AFTER,
        }
        const text = `Rate limits: ${describeLimits(names, limits)}.`
        route.schema.description = route.schema.description ? `${route.schema.description}\n\n${text}` : text
        Object.assign(route.schema, {
          'x-rate-limits': names.map((name) => ({
            name,
            per: LIMIT_RULES[name].per,
            counts: LIMIT_RULES[name].counts,
            limit: limits[name],
            windowSeconds: limits.windowSeconds,
          })),
        })
      }
    })
  },
  { name: 'tessera-rate-limits' },
)
