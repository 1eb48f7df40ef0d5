// Request and response bodies of the session endpoints.
import { Type } from 'typebox'
import { OPTIONAL_BODY } from '../http/responses.ts'

// Generous, so that anything token-like (an access token sent by mistake, say) gets a 401, not a 400.
export const RefreshTokenValue = Type.String({ minLength: 1, maxLength: 4096 })

export const SessionGrant = Type.Object({
  access_token: Type.String({ description: 'A JWT to send as `Authorization: Bearer <token>`' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  refresh_token: Type.Optional(
    Type.String({ description: 'Opaque; spent by POST /auth/refresh. Absent when delivered as a cookie.' }),
  ),
  refresh_token_expires_in: Type.Integer({ description: 'Seconds until the session ends at the latest' }),
})

export const RefreshBody = Type.Object(
  { refresh_token: Type.Optional(RefreshTokenValue) },
  {
    additionalProperties: false,
    [OPTIONAL_BODY]: true,
    description:
      'Optional: omit the body, or refresh_token, to use the cookie (with the X-Tessera-CSRF header)',
  },
)

export const Session = Type.Object({
  id: Type.String({ format: 'uuid' }),
  current: Type.Boolean({ description: 'Whether this is the session of the token making the request' }),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.String({ format: 'date-time', description: 'Last login or refresh' }),
  expiresAt: Type.String({ format: 'date-time', description: 'Absolute expiry' }),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
})

export const SessionList = Type.Object({ sessions: Type.Array(Session) })

export const SessionIdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
