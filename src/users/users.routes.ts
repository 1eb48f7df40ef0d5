// The signed-in user's own profile, and the admin-only user management endpoints.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { adminOnly } from '../access/auth.plugin.ts'
import { contextOf } from '../events/event.ts'
import { NoContent, problems } from '../http/responses.ts'
import {
  AdminUpdateUserBody,
  ListUsersQuery,
  UpdateProfileBody,
  User,
  UserIdParams,
  UserPage,
  userResponse,
} from './users.schemas.ts'

export const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { users } = app.deps.services

  app.patch(
    '/users/me',
    {
      schema: {
        operationId: 'updateMe',
        tags: ['users'],
        summary: 'Change your first or last name',
        body: UpdateProfileBody,
        response: { 200: User, ...problems(400) },
      },
    },
    async (request) =>
      userResponse(await users.updateProfile(request.auth.userId, request.body, contextOf(request, 'user'))),
  )

  app.get(
    '/users',
    {
      config: adminOnly,
      schema: {
        operationId: 'listUsers',
        tags: ['admin'],
        summary: 'List users, oldest first, a page at a time',
        querystring: ListUsersQuery,
        response: { 200: UserPage, ...problems(400) },
      },
    },
    async (request) => {
      const page = await users.list(request.query)
      return { users: page.users.map(userResponse), nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/users/:id',
    {
      config: adminOnly,
      schema: {
        operationId: 'getUser',
        tags: ['admin'],
        summary: 'One user',
        params: UserIdParams,
        response: { 200: User, ...problems(400, 404) },
      },
    },
    async (request) => userResponse(await users.get(request.params.id)),
  )

  app.patch(
    '/users/:id',
    {
      config: adminOnly,
      schema: {
        operationId: 'updateUser',
        tags: ['admin'],
        summary:
          "Change a user's roles or disable them; a disabled user's tokens stop working at once. 409 last_admin when it would leave no enabled admin",
        params: UserIdParams,
        body: AdminUpdateUserBody,
        response: { 200: User, ...problems(400, 404, 409) },
      },
    },
    async (request) =>
      userResponse(await users.adminUpdate(request.params.id, request.body, contextOf(request, 'admin'))),
  )

  app.delete(
    '/users/:id',
    {
      config: adminOnly,
      schema: {
        operationId: 'deleteUser',
        tags: ['admin'],
        summary:
          'Delete a user; their tokens stop working at once. 409 last_admin for the last enabled admin',
        params: UserIdParams,
        response: { 204: NoContent, ...problems(400, 404, 409) },
      },
    },
    async (request, reply) => {
      await users.delete(request.params.id, contextOf(request, 'admin'))
      return reply.code(204).send(null)
    },
  )
}
