// Account recovery and lockout (issue 14): reset tokens issued by an admin or requested by the user, the reset
// itself, and an admin's view of an account's failed logins.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { adminOnly } from '../access/auth.plugin.ts'
import { usernameKey } from '../access/username.ts'
import { clientOf, contextOf } from '../events/event.ts'
import { NoContent, problems } from '../http/responses.ts'
import { isoTime } from '../lib/clock.ts'
import { UserIdParams } from '../users/users.schemas.ts'
import {
  PasswordResetAccepted,
  PasswordResetBody,
  PasswordResetRequestBody,
  ResetLinkResponse,
} from './auth.schemas.ts'
import { OTHERS } from './login-throttle.repository.ts'

const LockoutState = Type.Object({
  userId: Type.String(),
  username: Type.String(),
  slowedDown: Type.Boolean({ description: 'Whether some logins of the account are being refused now' }),
  counters: Type.Array(
    Type.Object({
      device: Type.String({
        description:
          '`others`: every client without a device token of the account; `s.…`: the second-factor codes checked in one session; else a device id',
      }),
      failures: Type.Integer({ description: 'Failed logins counted, since the counter was last forgotten' }),
      lastFailureAt: Type.String({ format: 'date-time' }),
      slowedDownUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
        description: 'Until when its logins are refused, if they are now',
      }),
    }),
  ),
})

const ACCEPTED = {
  status: 'accepted',
  detail:
    'If an account with that username exists and is enabled, a reset link is on its way through the channel the app set up.',
} as const

export const recoveryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app.deps
  const { passwordResets, lockout, users } = app.deps.services

  app.post(
    '/users/:id/password-reset',
    {
      config: adminOnly,
      schema: {
        operationId: 'issuePasswordReset',
        tags: ['admin'],
        summary:
          "Issue a single-use password-reset token for a user, to hand over yourself; the user's earlier token stops working",
        params: UserIdParams,
        response: { 200: ResetLinkResponse, ...problems(400, 404) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return passwordResets.issue(request.params.id, 'admin', contextOf(request, 'admin'))
    },
  )

  app.post(
    '/auth/password-reset',
    {
      config: { auth: 'public', rateLimit: ['passwordResetPerIp'] },
      schema: {
        operationId: 'resetPassword',
        tags: ['auth'],
        summary:
          'Set a new password with a reset token: every session ends, and the token and any earlier one stop working',
        body: PasswordResetBody,
        response: { 204: NoContent, ...problems(400) },
      },
    },
    async (request, reply) => {
      await passwordResets.reset(request.body.token, request.body.newPassword, clientOf(request))
      return reply.code(204).send(null)
    },
  )

  // Served only when the app has a channel to send the link through (PASSWORD_RESET_WEBHOOK_URL).
  if (config.recovery.selfService) {
    app.post(
      '/auth/password-reset/request',
      {
        config: { auth: 'public', rateLimit: ['passwordResetPerIp', 'passwordResetPerUsername'] },
        schema: {
          operationId: 'requestPasswordReset',
          tags: ['auth'],
          summary:
            'Ask for a reset link: sent to the app (PASSWORD_RESET_WEBHOOK_URL) for an existing, enabled account; the same answer either way',
          body: PasswordResetRequestBody,
          response: { 202: PasswordResetAccepted, ...problems(400) },
        },
      },
      async (request, reply) => {
        // The work is done after the answer: it then takes the same time whether or not the account
        // exists. The link goes through the outbox, so once its transaction commits it is not lost.
        const { username } = request.body
        const client = clientOf(request)
        setImmediate(() => {
          passwordResets.request(username, client).catch((error: unknown) => {
            request.log.error({ err: error }, 'a password-reset request could not be handled')
          })
        })
        return reply.code(202).send(ACCEPTED)
      },
    )
  }

  app.get(
    '/users/:id/lockout',
    {
      config: adminOnly,
      schema: {
        operationId: 'getUserLockout',
        tags: ['admin'],
        summary: "A user's failed logins: whether and until when they slow the account's logins down",
        params: UserIdParams,
        response: { 200: LockoutState, ...problems(400, 404) },
      },
    },
    async (request) => {
      const user = await users.get(request.params.id)
      const counters = await lockout.state(usernameKey(user.username))
      return {
        userId: user.id,
        username: user.username,
        slowedDown: counters.some((counter) => counter.slowed),
        counters: counters.map((counter) => ({
          device: counter.device === OTHERS ? 'others' : counter.device,
          failures: counter.failures,
          lastFailureAt: isoTime(counter.lastFailureAt),
          slowedDownUntil: counter.slowed ? isoTime(counter.lockedUntil) : null,
        })),
      }
    },
  )

  app.delete(
    '/users/:id/lockout',
    {
      config: adminOnly,
      schema: {
        operationId: 'unlockUser',
        tags: ['admin'],
        summary: "Forget a user's failed logins: the account's logins are no longer slowed down",
        params: UserIdParams,
        response: { 204: NoContent, ...problems(400, 404) },
      },
    },
    async (request, reply) => {
      await lockout.unlock(await users.get(request.params.id), contextOf(request, 'admin'))
      return reply.code(204).send(null)
    },
  )
}
