// POST /auth/register, POST /auth/login, GET /auth/me.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problems } from '../http/responses.ts'
import { User, userResponse } from '../users/users.schemas.ts'
import { LoginBody, RegisterBody, TokenResponse } from './auth.schemas.ts'

export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { auth, usersService } = app.deps

  app.post(
    '/auth/register',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Create an account',
        body: RegisterBody,
        response: { 201: User, ...problems(400, 409) },
      },
    },
    async (request, reply) => reply.code(201).send(userResponse(await auth.register(request.body))),
  )

  app.post(
    '/auth/login',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Exchange username and password for an access token',
        body: LoginBody,
        response: { 200: TokenResponse, ...problems(400, 401) },
      },
    },
    async (request, reply) => {
      const grant = await auth.login(request.body.username, request.body.password)
      // RFC 6749 section 5.1: responses carrying tokens must not be cached.
      return reply.header('cache-control', 'no-store').send(grant)
    },
  )

  app.get(
    '/auth/me',
    { schema: { tags: ['auth'], summary: 'The signed-in user', response: { 200: User } } },
    async (request) => userResponse(await usersService.get(request.auth.userId)),
  )
}
