// Request and response bodies of the /auth endpoints: each declared once, for validation, serialization,
// TypeScript types and the OpenAPI document.
import { Type } from 'typebox'
import { USERNAME_MAX_LENGTH_LIMIT, type UsernamePolicy } from '../access/username.ts'
import { SessionGrant } from '../sessions/sessions.schemas.ts'
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

/** The device token an earlier login of the account handed out (README, Lockout). */
const DeviceTokenValue = Type.String({
  minLength: 1,
  maxLength: 128,
  writeOnly: true,
  description:
    "The device token an earlier login of this account returned: its failed logins are counted apart from everyone else's",
})

/** A password to check against the stored one: any length the stored one could have. */
const PasswordToCheck = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, writeOnly: true })

/**
 * A new username, as the policy says (USERNAME_PATTERN, USERNAME_MAX_LENGTH). At the defaults the schema shows
 * the pattern alone, whose repetition bounds the length; a configured pattern shows its anchored form and the
 * maximum length beside it.
 */
export function usernameSchema(policy: UsernamePolicy) {
  const custom = policy.configured
  return Type.String({
    pattern: policy.pattern,
    ...(custom ? { minLength: 1, maxLength: policy.maxLength } : {}),
    description: policy.description,
    examples: custom ? undefined : ['ada'],
  })
}

export const registerBody = (policy: UsernamePolicy) =>
  Type.Object(
    { username: usernameSchema(policy), password: Password, firstName: PersonName, lastName: PersonName },
    { additionalProperties: false },
  )

/** A name to look up (login, a reset request): any length a username can have. */
const UsernameToFind = Type.String({ minLength: 1, maxLength: USERNAME_MAX_LENGTH_LIMIT })

export const LoginBody = Type.Object(
  {
    username: UsernameToFind,
    password: PasswordToCheck,
    refresh_token_delivery: Type.Optional(
      Type.Union([Type.Literal('body'), Type.Literal('cookie')], {
        description:
          '`cookie` for browsers: the refresh token (and the device token) is set as an HttpOnly cookie instead of returned',
        default: 'body',
      }),
    ),
    device_token: Type.Optional(DeviceTokenValue),
  },
  { additionalProperties: false },
)

/** A login's answer: a session, and (unless delivered as a cookie) the device token. */
export const LoginGrant = Type.Intersect([
  SessionGrant,
  Type.Object({
    device_token: Type.Optional(
      Type.String({
        description:
          "Send it as `device_token` with this account's later logins: failed logins of others then never slow them down. Absent when delivered as a cookie.",
      }),
    ),
    device_token_expires_in: Type.Integer({ description: 'Seconds until the device token expires' }),
    mfa_enrollment_required: Type.Optional(
      Type.Literal(true, {
        description:
          'The user holds a role that needs a second factor (MFA_REQUIRED_ROLES): until they enrol one and sign in with it, their tokens act without that role',
      }),
    ),
  }),
])

export const ResetToken = Type.String({
  minLength: 1,
  maxLength: 128,
  description: 'The token of the reset link (after `#token=`)',
  writeOnly: true,
})

export const PasswordResetBody = Type.Object(
  { token: ResetToken, newPassword: Password },
  { additionalProperties: false },
)

export const PasswordResetRequestBody = Type.Object(
  { username: UsernameToFind },
  { additionalProperties: false },
)

export const PasswordResetAccepted = Type.Object({
  status: Type.Literal('accepted'),
  detail: Type.String(),
})

export const ResetLinkResponse = Type.Object({
  token: Type.String({ description: 'Single-use; give it to the user only (it sets their password)' }),
  url: Type.String({
    description: "The reset page's link: PUBLIC_URL + PASSWORD_RESET_PATH + `#token=` + token",
  }),
  expires_in: Type.Integer({ description: 'Seconds it stays valid' }),
})

export const ChangePasswordBody = Type.Object(
  { currentPassword: PasswordToCheck, newPassword: Password },
  { additionalProperties: false },
)
