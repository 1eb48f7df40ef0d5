// POST /auth/refresh, POST /auth/logout, POST /auth/logout-all, GET /auth/sessions, DELETE /auth/sessions/{id}.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { clientOf } from '../events/event.ts'
import { AppError } from '../http/problem.ts'
import { NoContent, problems } from '../http/responses.ts'
import { isoTime } from '../lib/clock.ts'
import { clearRefreshCookie, deliverInCookie, readRefreshToken } from './refresh-cookie.ts'
import { RefreshBody, SessionGrant, SessionIdParams, SessionList } from './sessions.schemas.ts'

const DEAD_TOKEN_CODES = new Set(['invalid_refresh_token', 'refresh_token_reused', 'session_expired'])
const isDeadTokenError = (error: unknown) => error instanceof AppError && DEAD_TOKEN_CODES.has(error.code)

export const sessionsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, metrics } = app.deps
  const { sessions } = app.deps.services
  // Every answer counted, the limits' 429s included: `succeeded`, or the problem code (`refresh_token_reused`).
  const countOutcome = (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    metrics.refreshAnswered(reply.statusCode < 400 ? 'succeeded' : (request.problemCode ?? 'failed'))
    done()
  }

  app.post(
    '/auth/refresh',
    {
      // refreshPerSession is counted by the session service, once it knows the token's session, and only for
      // a fresh rotation: a spent token presented again must always reach the reuse check.
      config: { auth: 'public', rateLimit: ['refreshPerIp', 'refreshPerSession'] },
      ...(metrics.enabled ? { onResponse: countOutcome } : {}),
      schema: {
        operationId: 'refresh',
        tags: ['sessions'],
        summary: 'Spend a refresh token for a new access token and a new refresh token',
        body: RefreshBody,
        response: { 200: SessionGrant, ...problems(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const presented = readRefreshToken(request, request.body?.refresh_token, config.cookies)
      if (!presented) throw new AppError('invalid_refresh_token', 'No refresh token was sent')
      const countRotation = (sessionId: string) => request.countLimit('refreshPerSession', sessionId)
      const grant = await sessions
        .refresh(presented.token, countRotation, clientOf(request))
        .catch((error: unknown) => {
          // Only a token that can never work again is cleared: after a 429 or a fault, the cookie still holds
          // the session's live token.
          if (presented.fromCookie && isDeadTokenError(error)) clearRefreshCookie(reply, config.cookies)
          throw error
        })
      reply.header('cache-control', 'no-store')
      if (!presented.fromCookie) return grant
      return deliverInCookie(reply, grant, config.cookies)
    },
  )

  app.post(
    '/auth/logout',
    {
      // It may look up a refresh token, as a refresh does, and shares that limit.
      config: { auth: 'public', rateLimit: ['refreshPerIp'] },
      schema: {
        operationId: 'logout',
        // The access token is optional here: without it, the refresh token says which session ends.
        security: [{}, { bearerAuth: [] }],
        tags: ['sessions'],
        summary: 'End the current session: by its access token, or by its refresh token (body or cookie)',
        body: RefreshBody,
        response: { 204: NoContent, ...problems(400, 401, 403) },
      },
    },
    async (request, reply) => {
      let sessionId: string | undefined
      if (request.headers.authorization !== undefined) {
        await app.authenticate(request, undefined)
        sessionId = request.auth.sessionId
      } else {
        const presented = readRefreshToken(request, request.body?.refresh_token, config.cookies)
        if (!presented)
          throw new AppError('invalid_token', 'Send the access token, or the refresh token to end')
        sessionId = (await sessions.sessionOfToken(presented.token))?.id
      }
      // Ending a session that has already ended is not an error: the result is the same.
      if (sessionId !== undefined) await sessions.end(sessionId, clientOf(request))
      clearRefreshCookie(reply, config.cookies)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/auth/logout-all',
    {
      schema: {
        operationId: 'logoutAll',
        tags: ['sessions'],
        summary: 'End every session of the signed-in user, on every device',
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      await sessions.revokeAll(request.auth.userId, clientOf(request))
      clearRefreshCookie(reply, config.cookies)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/auth/sessions',
    {
      schema: {
        operationId: 'listSessions',
        tags: ['sessions'],
        summary: "The signed-in user's active sessions",
        response: { 200: SessionList },
      },
    },
    async (request) => {
      const list = await sessions.list(request.auth.userId)
      return {
        sessions: list.map((session) => ({
          id: session.id,
          current: session.id === request.auth.sessionId,
          createdAt: isoTime(session.createdAt),
          lastUsedAt: isoTime(session.lastUsedAt),
          expiresAt: isoTime(session.expiresAt),
          userAgent: session.userAgent,
          ip: session.ip,
        })),
      }
    },
  )

  app.delete(
    '/auth/sessions/:id',
    {
      schema: {
        operationId: 'revokeSession',
        tags: ['sessions'],
        summary: 'End one of your sessions (sign out another device)',
        params: SessionIdParams,
        response: { 204: NoContent, ...problems(400, 404) },
      },
    },
    async (request, reply) => {
      await sessions.revoke(request.auth.userId, request.params.id, clientOf(request))
      return reply.code(204).send(null)
    },
  )
}
