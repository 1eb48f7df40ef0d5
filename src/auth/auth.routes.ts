// POST /auth/register, POST /auth/login (and its second step, /auth/login/mfa), POST /auth/reauthenticate,
// GET /auth/me, POST /users/me/password: the routes that check or set a password, and the signed-in user.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { AccessState } from '../access/auth-state.ts'
import { anonymousContext, clientOf, contextOf } from '../events/event.ts'
import { NoContent, problems } from '../http/responses.ts'
import { deliverInCookie } from '../sessions/refresh-cookie.ts'
import type { SessionGrant } from '../sessions/session.service.ts'
import { User, userResponse } from '../users/users.schemas.ts'
import { ChangePasswordBody, LoginBody, LoginGrant, registerBody } from './auth.schemas.ts'
import { readDeviceCookie, setDeviceCookie } from './device-cookie.ts'
import type { DeviceToken } from './device-tokens.ts'
import { countCodeChecks, oneFactor, RECENT_AUTHENTICATION_SECONDS } from './factor-proof.ts'
import { AccessGrant, LoginMfaBody, MfaChallenge, ReauthenticateBody } from './mfa.schemas.ts'

export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app.deps
  const { auth, users } = app.deps.services
  const { authStates, usernames } = app.deps.access
  // GET /auth/me's answer, made once per remembered state (a state is replaced, never changed, when it is
  // read again): formatting its two dates was the largest cost of the handler (issue 19). Kept as long as
  // the cache holds the state, and no longer.
  const answers = new WeakMap<AccessState, ReturnType<typeof userResponse>>()
  const answerOf = (state: AccessState) => {
    let answer = answers.get(state)
    if (!answer) {
      answer = userResponse({ id: state.userId, ...state })
      answers.set(state, answer)
    }
    return answer
  }
  const RegisterBody = registerBody(usernames)

  /** A session's answer: the grant in the body, or its refresh token (and the device token) as cookies. */
  const answerGrant = (
    reply: FastifyReply,
    grant: SessionGrant & { mfa_enrollment_required?: true },
    device: DeviceToken,
    delivery: 'body' | 'cookie' | undefined,
  ) => {
    // RFC 6749 section 5.1: responses carrying tokens must not be cached.
    reply.header('cache-control', 'no-store')
    if (delivery !== 'cookie') {
      return { ...grant, device_token: device.token, device_token_expires_in: device.expiresIn }
    }
    const body = deliverInCookie(reply, grant, config.cookies)
    setDeviceCookie(reply, device, config.cookies)
    return { ...body, device_token_expires_in: device.expiresIn }
  }

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
        operationId: 'register',
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
        const token = body.device_token ?? readDeviceCookie(request, config.cookies)
        request.loginDevice = auth.deviceOf(body.username, token)
      },
      onResponse: recordThrottledLogin,
      schema: {
        operationId: 'login',
        tags: ['auth'],
        summary: 'Exchange username and password for an access token and a refresh token (a new session)',
        description:
          'For a user with a second factor, the right password answers `{mfa_required: true, mfa_token, expires_in}` ' +
          'instead: send the token with a code to POST /auth/login/mfa.',
        body: LoginBody,
        response: { 200: Type.Union([LoginGrant, MfaChallenge]), ...problems(400, 401, 429) },
      },
    },
    async (request, reply) => {
      const { username, password, refresh_token_delivery, device_token } = request.body
      const outcome = await auth.login(
        username,
        password,
        { userAgent: request.headers['user-agent'], ip: request.ip },
        device_token ?? readDeviceCookie(request, config.cookies),
      )
      if ('challenge' in outcome) {
        reply.header('cache-control', 'no-store')
        return { mfa_required: true as const, ...outcome.challenge }
      }
      return answerGrant(reply, outcome.grant, outcome.device, refresh_token_delivery)
    },
  )

  app.post(
    '/auth/login/mfa',
    {
      // mfaPerAccount: counted per user whose code is checked (the handler knows it from the MFA token).
      config: { auth: 'public', rateLimit: ['mfaPerIp', 'mfaPerAccount'] },
      schema: {
        operationId: 'completeLogin',
        tags: ['auth'],
        summary:
          "Complete a login with the second factor: the login's MFA token and a code or a recovery code",
        description:
          'A wrong code, and an MFA token that is wrong, used or expired, are answered alike: 401 `invalid_mfa_code`. ' +
          'A token allows 5 tries within 5 minutes.',
        body: LoginMfaBody,
        response: { 200: LoginGrant, ...problems(400, 401, 429) },
      },
    },
    async (request, reply) => {
      const { mfa_token, refresh_token_delivery } = request.body
      const { grant, device } = await auth.completeLogin(
        mfa_token,
        oneFactor(request.body),
        { userAgent: request.headers['user-agent'], ip: request.ip },
        countCodeChecks(request),
      )
      return answerGrant(reply, grant, device, refresh_token_delivery)
    },
  )

  app.post(
    '/auth/reauthenticate',
    {
      // As a password change: a stolen access token gives no more guesses than the login form.
      config: {
        rateLimit: ['passwordChangePerUser', 'passwordChangePerIp', 'loginPerUsername', 'mfaPerAccount'],
      },
      schema: {
        operationId: 'reauthenticate',
        tags: ['auth'],
        summary:
          'Prove who you are again (password, and a code if you have a second factor): a fresh access token of this session, with a new auth_time',
        description:
          'The answer to a step-up challenge (401 `mfa_required` or `reauthentication_required`, RFC 9470). ' +
          'The refresh token is unchanged; tokens it gets from now on carry the new `auth_time` and `amr`.',
        body: ReauthenticateBody,
        response: { 200: AccessGrant, ...problems(400, 404) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      const { password, ...factor } = request.body
      return auth.reauthenticate(
        request.auth,
        { password, ...oneFactor(factor, { required: false }) },
        contextOf(request, 'user'),
        countCodeChecks(request),
      )
    },
  )

  app.get(
    '/auth/me',
    {
      schema: {
        operationId: 'getMe',
        tags: ['auth'],
        summary: 'The signed-in user',
        response: { 200: User },
      },
    },
    // Not an async function: a remembered state is answered without a promise (as the auth check is).
    (request) => {
      // The state the auth check just read (from the cache, mostly): no database read per request.
      const state = authStates.get(request.auth.sessionId)
      if (state instanceof Promise) {
        return state.then((loaded) =>
          loaded ? answerOf(loaded) : users.get(request.auth.userId).then(userResponse),
        )
      }
      return state ? answerOf(state) : users.get(request.auth.userId).then(userResponse)
    },
  )

  app.post(
    '/users/me/password',
    {
      // A wrong current password counts as a failed login of the account (loginPerUsername): a stolen
      // access token gives no more guesses than the login form. A recent authentication (issue 15): a token
      // left on a shared machine is not enough.
      config: {
        auth: { maxAge: RECENT_AUTHENTICATION_SECONDS },
        rateLimit: ['passwordChangePerUser', 'passwordChangePerIp', 'loginPerUsername'],
      },
      schema: {
        operationId: 'changePassword',
        tags: ['users'],
        summary:
          'Change your password; every session ends, and every access token issued before stops working',
        body: ChangePasswordBody,
        response: { 204: NoContent, ...problems(400) },
      },
    },
    async (request, reply) => {
      const { userId, username } = request.auth
      await auth.changePassword(
        { id: userId, username, sessionId: request.auth.sessionId },
        request.body,
        contextOf(request, 'user'),
      )
      return reply.code(204).send(null)
    },
  )
}
