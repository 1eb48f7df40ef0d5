// Request and response bodies of the /auth endpoints: each declared once, for validation, serialization,
// TypeScript types and the OpenAPI document.
import { Type } from 'typebox'
import { USERNAME_PATTERN } from '../access/username.ts'
import { PersonName } from '../users/users.schemas.ts'

export const PASSWORD_MIN_LENGTH = 8
// Long enough for any passphrase, short enough that a huge password cannot make hashing costly.
export const PASSWORD_MAX_LENGTH = 256

export const Password = Type.String({
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  description: `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`,
  writeOnly: true,
})

/** A password to check against the stored one: any length the stored one could have. */
const PasswordToCheck = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, writeOnly: true })

export const Username = Type.String({
  pattern: USERNAME_PATTERN,
  description: '3 to 32 letters, digits, ".", "_" or "-", starting with a letter or digit; case-insensitive',
  examples: ['ada'],
})

export const RegisterBody = Type.Object(
  { username: Username, password: Password, firstName: PersonName, lastName: PersonName },
  { additionalProperties: false },
)

export const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 128 }),
    password: PasswordToCheck,
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
  { currentPassword: PasswordToCheck, newPassword: Password },
  { additionalProperties: false },
)
