// Request and response bodies of the /auth endpoints: each declared once, for validation, serialization,
// TypeScript types and the OpenAPI document.
import { Type } from 'typebox'
import { USERNAME_PATTERN } from '../users/username.ts'

export const PASSWORD_MIN_LENGTH = 8
// Long enough for any passphrase, short enough that a huge password cannot make hashing costly.
export const PASSWORD_MAX_LENGTH = 256

export const Password = Type.String({
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  description: `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`,
})

export const Username = Type.String({
  pattern: USERNAME_PATTERN,
  description: '3 to 32 letters, digits, ".", "_" or "-", starting with a letter or digit; case-insensitive',
  examples: ['ada'],
})

export const PersonName = Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\p{Cc}]+$' })

export const RegisterBody = Type.Object(
  { username: Username, password: Password, firstName: PersonName, lastName: PersonName },
  { additionalProperties: false },
)

export const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 128 }),
    password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH }),
    refresh_token_delivery: Type.Optional(
      Type.Union([Type.Literal('body'), Type.Literal('cookie')], {
        description:
          '`cookie` for browsers: the refresh token is set as an HttpOnly cookie instead of returned',
        default: 'body',
      }),
    ),
  },
  { additionalProperties: false },
)

export const ChangePasswordBody = Type.Object(
  { currentPassword: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH }), newPassword: Password },
  { additionalProperties: false },
)
