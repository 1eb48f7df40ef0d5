// A second factor (issue 15): the signed-in user's TOTP enrolment, recovery codes and removal, and an admin's
// removal of a user's factor. Signing in with it is in auth.routes.ts (POST /auth/login/mfa, /auth/reauthenticate).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { adminOnly } from '../access/auth.plugin.ts'
import { contextOf } from '../events/event.ts'
import { AppError } from '../http/problem.ts'
import { NoContent, problems } from '../http/responses.ts'
import { UserIdParams } from '../users/users.schemas.ts'
import { countCodeChecks, oneFactor, RECENT_AUTHENTICATION_SECONDS } from './factor-proof.ts'
import {
  ConfirmTotpBody,
  MfaStatus,
  ReauthenticateBody,
  RecoveryCodes,
  TotpEnrolment,
} from './mfa.schemas.ts'

const RemoveFactorBody = Type.Object(ReauthenticateBody.properties, {
  additionalProperties: false,
  description: 'Your password, and `code` or `recovery_code`',
})

export const mfaRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { auth, mfa, users } = app.deps.services

  app.get(
    '/auth/mfa',
    {
      schema: {
        operationId: 'getMfaStatus',
        tags: ['mfa'],
        summary: 'Your second factor: whether it is enabled, and how many recovery codes are left',
        response: { 200: MfaStatus },
      },
    },
    async (request) => mfa.status(request.auth.userId),
  )

  app.post(
    '/auth/mfa/totp',
    {
      config: { auth: { maxAge: RECENT_AUTHENTICATION_SECONDS } },
      schema: {
        operationId: 'startTotpEnrollment',
        tags: ['mfa'],
        summary:
          'Start enrolling a TOTP factor: its secret, otpauth:// URI and QR code. It is enabled once a code confirms it (within 10 minutes)',
        response: { 200: TotpEnrolment, ...problems(409) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return mfa.startEnrolment(
        { id: request.auth.userId, username: request.auth.username },
        contextOf(request, 'user'),
      )
    },
  )

  app.post(
    '/auth/mfa/totp/confirm',
    {
      config: { rateLimit: ['mfaPerAccount'] },
      schema: {
        operationId: 'confirmTotpEnrollment',
        tags: ['mfa'],
        summary:
          'Confirm the enrolment with a code of the app: logins now ask for a code; the answer holds 10 recovery codes, shown this once',
        body: ConfirmTotpBody,
        response: { 200: RecoveryCodes, ...problems(400, 409) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return mfa.confirmEnrolment(
        request.auth.userId,
        request.auth.sessionId,
        request.body.code,
        contextOf(request, 'user'),
        countCodeChecks(request),
      )
    },
  )

  app.post(
    '/auth/mfa/recovery-codes',
    {
      config: { auth: { mfa: true, maxAge: RECENT_AUTHENTICATION_SECONDS } },
      schema: {
        operationId: 'regenerateRecoveryCodes',
        tags: ['mfa'],
        summary: 'Make 10 new recovery codes, shown this once; the old ones stop working',
        response: { 200: RecoveryCodes, ...problems(409) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return mfa.regenerateRecoveryCodes(request.auth.userId, contextOf(request, 'user'))
    },
  )

  app.delete(
    '/auth/mfa/totp',
    {
      // The body re-authenticates (password and a code), which is the recent authentication this needs.
      config: {
        rateLimit: ['passwordChangePerUser', 'passwordChangePerIp', 'loginPerUsername', 'mfaPerAccount'],
      },
      // Before the limits count: nothing to remove is no failed login.
      preValidation: async (request) => {
        if (!(await mfa.isEnabled(request.auth.userId))) throw new AppError('mfa_not_enabled')
      },
      schema: {
        operationId: 'removeTotp',
        tags: ['mfa'],
        summary:
          'Remove your TOTP factor and its recovery codes: needs your password and a code or recovery code',
        body: RemoveFactorBody,
        response: { 204: NoContent, ...problems(400, 409) },
      },
    },
    async (request, reply) => {
      await auth.removeOwnFactor(
        request.auth,
        { password: request.body.password, ...oneFactor(request.body) },
        contextOf(request, 'user'),
        countCodeChecks(request),
      )
      return reply.code(204).send(null)
    },
  )

  app.delete(
    '/users/:id/mfa',
    {
      config: adminOnly,
      schema: {
        operationId: 'resetUserMfa',
        tags: ['admin'],
        summary: "Remove a user's second factor and recovery codes (a user who lost their device)",
        params: UserIdParams,
        response: { 204: NoContent, ...problems(404, 409) },
      },
    },
    async (request, reply) => {
      await users.get(request.params.id)
      await mfa.remove(request.params.id, contextOf(request, 'admin'))
      return reply.code(204).send(null)
    },
  )
}
