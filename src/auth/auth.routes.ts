// POST /auth/register, POST /auth/login, GET /auth/me, POST /users/me/password: the routes that check or set
// a password, and the signed-in user.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { anonymousContext, clientOf, contextOf } from '../events/event.ts'
import { NoContent, problems } from '../http/responses.ts'
import { deliverInCookie } from '../sessions/refresh-cookie.ts'
import { User, userResponse } from '../users/users.schemas.ts'
import { ChangePasswordBody, LoginBody, LoginGrant, RegisterBody } from './auth.schemas.ts'
import { readDeviceCookie, setDeviceCookie } from './device-cookie.ts'

export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app.deps
  const { auth, users } = app.deps.services
  const { authStates } = app.deps.access

  /**
   * A login answered 429 rate_limited, whether by a declared limit or by the password-hash queue, is a failed login to
   * record; after the answer is sent, so that it costs the refused client nothing.
   */
  const recordThrottledLogin = async (request: FastifyRequest) => {
    // login_slowed_down, also a 429, is recorded by the service as what it is (slowed_down).
    if (request.problemCode !== 'rate_limited') return
    const username = (request.body as { username?: unknown } | undefined)?.username
    if (typeof username !== 'string') return
    await auth.recordThrottledLogin(username, clientOf(request)).catch((error: unknown) => {
      request.log.error({ err: error }, 'a throttled login could not be recorded')
    })
  }

  app.post(
    '/auth/register',
    {
      config: { auth: 'public', rateLimit: ['registerPerIp', 'registerPerUsername'] },
      schema: {
        tags: ['auth'],
        summary: 'Create an account',
        body: RegisterBody,
        response: { 201: User, ...problems(400, 409) },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(userResponse(await auth.register(request.body, { context: anonymousContext(request) }))),
  )

  app.post(
    '/auth/login',
    {
      // loginPerUsername counts failed logins only: a successful one is given back. It counts per account and
      // device: a client with the account's device token is not refused for the failures of others.
      config: { auth: 'public', rateLimit: ['loginPerIp', 'loginPerUsername'] },
      preValidation: async (request) => {
        const body = request.body as { username?: unknown; device_token?: unknown } | undefined
        if (typeof body?.username !== 'string') return
        const token = body.device_token ?? readDeviceCookie(request, config.cookieSecure)
        request.loginDevice = auth.deviceOf(body.username, token)
      },
      onResponse: recordThrottledLogin,
      schema: {
        tags: ['auth'],
        summary: 'Exchange username and password for an access token and a refresh token (a new session)',
        body: LoginBody,
        response: { 200: LoginGrant, ...problems(400, 401, 429) },
      },
    },
    async (request, reply) => {
      const { username, password, refresh_token_delivery, device_token } = request.body
      const { grant, device } = await auth.login(
        username,
        password,
        { userAgent: request.headers['user-agent'], ip: request.ip },
        device_token ?? readDeviceCookie(request, config.cookieSecure),
      )
      // RFC 6749 section 5.1: responses carrying tokens must not be cached.
      reply.header('cache-control', 'no-store')
      if (refresh_token_delivery !== 'cookie') {
        return { ...grant, device_token: device.token, device_token_expires_in: device.expiresIn }
      }
      const body = deliverInCookie(reply, grant, config.cookieSecure)
      setDeviceCookie(reply, device, config.cookieSecure)
      return { ...body, device_token_expires_in: device.expiresIn }
    },
  )

  app.get(
    '/auth/me',
    { schema: { tags: ['auth'], summary: 'The signed-in user', response: { 200: User } } },
    async (request) => {
      // The state the auth check just read (from the cache, mostly): no database read per request.
      const state = await authStates.get(request.auth.sessionId)
      if (!state) return userResponse(await users.get(request.auth.userId))
      return userResponse({ id: state.userId, ...state })
    },
  )

  app.post(
    '/users/me/password',
    {
      // A wrong current password counts as a failed login of the account (loginPerUsername): a stolen
      // access token gives no more guesses than the login form.
      config: { rateLimit: ['passwordChangePerUser', 'passwordChangePerIp', 'loginPerUsername'] },
      schema: {
        tags: ['users'],
        summary:
          'Change your password; every session ends, and every access token issued before stops working',
        body: ChangePasswordBody,
        response: { 204: NoContent, ...problems(400) },
      },
    },
    async (request, reply) => {
      const { userId, username } = request.auth
      await auth.changePassword({ id: userId, username }, request.body, contextOf(request, 'user'))
      return reply.code(204).send(null)
    },
  )
}
