// @tessera/client: Tessera's API, typed from its OpenAPI document (schema.ts, made by openapi-typescript; never
// edited by hand), over openapi-fetch. It keeps the tokens, so that an app does not write that part: the access
// token in memory; the refresh token in the storage given (body mode) or in the HttpOnly cookie (cookie mode,
// for browsers); a device token, so that others' failed logins never slow the user down. Calls that meet an
// expired access token start one refresh between them, then each is sent again, once.
import createFetchClient from 'openapi-fetch'
import type { components, paths } from './schema.ts'

export type { components, paths }

type Schemas = components['schemas']
export type User = paths['/auth/me']['get']['responses'][200]['content']['application/json']
type RegisterBody = paths['/auth/register']['post']['requestBody']['content']['application/json']

/** Where the client keeps what must outlive a page or a process: the refresh token and the device token. */
export type TokenStorage = {
  get(key: StoredToken): string | undefined | Promise<string | undefined>
  set(key: StoredToken, value: string | undefined): void | Promise<void>
}
export type StoredToken = 'refresh_token' | 'device_token'

/** A storage that forgets everything when the process ends: the default. */
export function memoryStorage(): TokenStorage {
  const values = new Map<StoredToken, string>()
  return {
    get: (key) => values.get(key),
    set: (key, value) => {
      if (value === undefined) values.delete(key)
      else values.set(key, value)
    },
  }
}

export type TesseraClientOptions = {
  /** Tessera's URL, such as `https://auth.example.com`. */
  baseUrl: string
  /**
   * `body` (the default; servers, CLIs, mobile apps): the refresh token comes in the body and goes to `storage`.
   * `cookie` (browsers): it is an HttpOnly cookie no script can read; the client sends credentials and the
   * CSRF header.
   */
  mode?: 'body' | 'cookie'
  /** Where the refresh token (body mode) and the device token (body mode) are kept: memory by default. */
  storage?: TokenStorage
  fetch?: typeof globalThis.fetch
}

/** A problem+json answer (RFC 9457), thrown by the client's own methods. */
export class TesseraError extends Error {
  readonly status: number
  readonly code: string
  readonly problem: Schemas['Problem'] | undefined

  constructor(status: number, problem: Schemas['Problem'] | undefined) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`)
    this.name = 'TesseraError'
    this.status = status
    this.code = problem?.code ?? 'unknown'
    this.problem = problem
  }
}

export type LoginResult =
  | { status: 'signed_in' }
  | {
      status: 'mfa_required'
      /** Completes the login with a code of the user's app, or a recovery code. */
      complete(factor: { code: string } | { recovery_code: string }): Promise<{ status: 'signed_in' }>
    }

const CSRF_HEADER = 'X-Tessera-CSRF'

export function createTesseraClient(options: TesseraClientOptions) {
  const mode = options.mode ?? 'body'
  const storage = options.storage ?? memoryStorage()
  const baseFetch = options.fetch ?? globalThis.fetch.bind(globalThis)
  let accessToken: string | undefined
  let refreshing: Promise<boolean> | undefined

  const withToken = (request: Request) => {
    if (accessToken !== undefined && !request.headers.has('authorization')) {
      request.headers.set('authorization', `Bearer ${accessToken}`)
    }
    return request
  }

  /** Whether an answer says the access token ran out (not that it is wrong, revoked, or lacks a step-up). */
  const expired = async (response: Response) => {
    if (response.status !== 401) return false
    const problem = (await response
      .clone()
      .json()
      .catch(() => undefined)) as { code?: string } | undefined
    return problem?.code === 'token_expired'
  }

  // Every call goes through here: with the access token, and sent again once after a refresh if it had expired.
  const authorizedFetch = async (input: Request): Promise<Response> => {
    const retry = input.clone()
    const sentWith = accessToken
    const response = await baseFetch(withToken(input))
    if (sentWith === undefined || !(await expired(response))) return response
    // Another call may have refreshed meanwhile: then its token is the one to retry with.
    if (accessToken === sentWith && !(await refresh())) return response
    return baseFetch(withToken(retry))
  }

  const api = createFetchClient<paths>({
    baseUrl: options.baseUrl,
    fetch: authorizedFetch,
    ...(mode === 'cookie' ? { credentials: 'include' as const } : {}),
  })

  const fail = (response: Response, error: unknown): never => {
    throw new TesseraError(response.status, error as Schemas['Problem'] | undefined)
  }

  /** Keeps what a login or refresh answered; `false` when the session is over (the tokens are forgotten). */
  const keep = async (grant: { access_token: string; refresh_token?: string; device_token?: string }) => {
    accessToken = grant.access_token
    if (mode === 'body' && grant.refresh_token !== undefined)
      await storage.set('refresh_token', grant.refresh_token)
    if (grant.device_token !== undefined) await storage.set('device_token', grant.device_token)
  }

  const forget = async () => {
    accessToken = undefined
    await storage.set('refresh_token', undefined)
  }

  /**
   * A POST that names the session by its refresh token: the cookie (with the CSRF header) in cookie mode, the
   * stored token in the body in body mode. `extra` headers go along (a bearer token, say).
   */
  const sessionPost = (path: string, refreshToken: string | undefined, extra: Record<string, string> = {}) =>
    baseFetch(`${options.baseUrl}${path}`, {
      method: 'POST',
      headers: {
        ...extra,
        ...(mode === 'cookie' ? { [CSRF_HEADER]: '1' } : { 'content-type': 'application/json' }),
      },
      ...(mode === 'cookie'
        ? { credentials: 'include' as const }
        : refreshToken === undefined
          ? {}
          : { body: JSON.stringify({ refresh_token: refreshToken }) }),
    })

  /**
   * Spends the refresh token for a new pair, once for all the calls that ask at the same time; false when the
   * session is over (the tokens are then forgotten: sign in again).
   */
  function refresh(): Promise<boolean> {
    refreshing ??= (async () => {
      try {
        const refreshToken = mode === 'body' ? await storage.get('refresh_token') : undefined
        if (mode === 'body' && refreshToken === undefined) return false
        const response = await sessionPost('/auth/refresh', refreshToken)
        if (!response.ok) {
          // A network fault or a 429 leaves the tokens as they are; an ended session forgets them.
          if (response.status === 401) await forget()
          return false
        }
        await keep((await response.json()) as { access_token: string; refresh_token?: string })
        return true
      } finally {
        refreshing = undefined
      }
    })()
    return refreshing
  }

  const delivery = mode === 'cookie' ? ('cookie' as const) : ('body' as const)

  return {
    /** The typed API itself (openapi-fetch), with the client's tokens: for every route the methods below lack. */
    api,
    /** The access token now, if signed in: for calling your own API with it. */
    get accessToken() {
      return accessToken
    },
    refresh,

    async register(fields: RegisterBody): Promise<User> {
      const { data, error, response } = await api.POST('/auth/register', { body: fields })
      return data ?? fail(response, error)
    },

    async login(username: string, password: string): Promise<LoginResult> {
      const deviceToken = mode === 'body' ? await storage.get('device_token') : undefined
      const { data, error, response } = await api.POST('/auth/login', {
        body: {
          username,
          password,
          refresh_token_delivery: delivery,
          ...(deviceToken === undefined ? {} : { device_token: deviceToken }),
        },
      })
      if (!data) return fail(response, error)
      if ('mfa_required' in data) {
        const mfaToken = data.mfa_token
        return {
          status: 'mfa_required',
          complete: async (factor) => {
            const second = await api.POST('/auth/login/mfa', {
              body: { mfa_token: mfaToken, refresh_token_delivery: delivery, ...factor },
            })
            if (!second.data) return fail(second.response, second.error)
            await keep(second.data)
            return { status: 'signed_in' }
          },
        }
      }
      await keep(data)
      return { status: 'signed_in' }
    },

    /**
     * Proves who the user is again (the password, and a code or recovery code when they have a second factor):
     * the session's access token is then a fresh one, with a new `auth_time`, as step-up challenges ask.
     */
    async reauthenticate(
      password: string,
      factor: { code: string } | { recovery_code: string } | Record<string, never> = {},
    ) {
      const { data, error, response } = await api.POST('/auth/reauthenticate', {
        body: { password, ...factor },
      })
      if (!data) return fail(response, error)
      accessToken = data.access_token
    },

    async me(): Promise<User> {
      const { data, error, response } = await api.GET('/auth/me')
      return data ?? fail(response, error)
    },

    async sessions() {
      const { data, error, response } = await api.GET('/auth/sessions')
      return (data ?? fail(response, error)).sessions
    },

    /** Ends one of the user's sessions (sign out another device). */
    async endSession(id: string): Promise<void> {
      const { error, response } = await api.DELETE('/auth/sessions/{id}', { params: { path: { id } } })
      if (!response.ok) fail(response, error)
    },

    /** A page of the user's recent security events, newest first: pass `nextCursor` as `cursor` for the next. */
    async activity(page: { limit?: number; cursor?: string } = {}) {
      const { data, error, response } = await api.GET('/auth/activity', { params: { query: page } })
      return data ?? fail(response, error)
    },

    /** Ends this session, on the server too, and forgets its tokens, whatever the server answered. */
    async logout(): Promise<void> {
      try {
        const refreshToken = mode === 'body' ? await storage.get('refresh_token') : undefined
        // The refresh token (or its cookie) names the session, and outlives the access token: sent alone, so
        // that a logout after the access token expired still ends the session (an expired bearer is a 401).
        const bearer = mode === 'body' && refreshToken === undefined ? accessToken : undefined
        await sessionPost(
          '/auth/logout',
          refreshToken,
          bearer === undefined ? {} : { authorization: `Bearer ${bearer}` },
        )
      } finally {
        await forget()
      }
    },
  }
}

export type TesseraClient = ReturnType<typeof createTesseraClient>
