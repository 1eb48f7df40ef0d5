// POST /auth/register, POST /auth/login, GET /auth/me.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../http/responses.ts'
import { addressKey } from '../rate-limits/rate-limiter.ts'
import { deliverInCookie } from '../sessions/refresh-cookie.ts'
import { SessionGrant } from '../sessions/sessions.schemas.ts'
import { usernameKey } from '../users/username.ts'
import { User, userResponse } from '../users/users.schemas.ts'
import { LoginBody, RegisterBody } from './auth.schemas.ts'

export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { auth, usersService, authStates, config, rateLimits } = app.deps

  app.post(
    '/auth/register',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Create an account',
        body: RegisterBody,
        response: { 201: User, ...problems(400, 409, 429) },
      },
    },
    async (request, reply) => {
      await rateLimits.registerPerIp.consume(addressKey(request.ip))
      await rateLimits.registerPerUsername.consume(usernameKey(request.body.username))
      return reply.code(201).send(userResponse(await auth.register(request.body)))
    },
  )

  app.post(
    '/auth/login',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Exchange username and password for an access token and a refresh token (a new session)',
        body: LoginBody,
        response: { 200: SessionGrant, ...problems(400, 401, 429) },
      },
    },
    async (request, reply) => {
      const { username, password, refresh_token_delivery } = request.body
      // Counted before the password is checked, so that parallel guesses cannot slip past the limit; a
      // successful login takes its own attempt back, so only failures add up (and an owner's logins do not
      // clear an attacker's failures).
      const account = usernameKey(username)
      await rateLimits.loginPerIp.consume(addressKey(request.ip))
      await rateLimits.loginPerUsername.consume(account)
      const grant = await auth.login(username, password, {
        userAgent: request.headers['user-agent'],
        ip: request.ip,
      })
      await rateLimits.loginPerUsername.refund(account)
      // RFC 6749 section 5.1: responses carrying tokens must not be cached.
      reply.header('cache-control', 'no-store')
      if (refresh_token_delivery !== 'cookie') return grant
      return deliverInCookie(reply, grant, config.cookieSecure)
    },
  )

  app.get(
    '/auth/me',
    { schema: { tags: ['auth'], summary: 'The signed-in user', response: { 200: User } } },
    async (request) => {
      // The state the auth check just read (from the cache, mostly): no database read per request.
      const state = await authStates.get(request.auth.sessionId)
      if (!state) return userResponse(await usersService.get(request.auth.userId))
      return userResponse({ id: state.userId, ...state })
    },
  )
}
