// Request and response bodies of the second-factor endpoints (issue 15).
import { Type } from 'typebox'
import { PASSWORD_MAX_LENGTH } from './auth.schemas.ts'
import { RECOVERY_CODE_COUNT } from './mfa.service.ts'
import { TOTP_DIGITS } from './totp.ts'

/** A code of the user's authenticator app. */
export const TotpCode = Type.String({
  pattern: `^[0-9]{${TOTP_DIGITS}}$`,
  writeOnly: true,
  description: `The ${TOTP_DIGITS}-digit code the authenticator app shows now`,
  examples: ['123456'],
})

const RecoveryCode = Type.String({
  minLength: 1,
  maxLength: 64,
  writeOnly: true,
  description: 'One of the recovery codes, with or without its dashes; each works once',
})

const CurrentPassword = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH, writeOnly: true })

/** A second factor: `code` or `recovery_code` (one of them; the handler says which is missing). */
const FactorFields = { code: Type.Optional(TotpCode), recovery_code: Type.Optional(RecoveryCode) }

export const MfaChallenge = Type.Object({
  mfa_required: Type.Literal(true),
  mfa_token: Type.String({
    description: 'Single-use, for POST /auth/login/mfa only: not an access token, and it opens nothing else',
  }),
  expires_in: Type.Integer({ description: 'Seconds left to send the code' }),
})

export const LoginMfaBody = Type.Object(
  {
    mfa_token: Type.String({ minLength: 1, maxLength: 128, writeOnly: true }),
    ...FactorFields,
    refresh_token_delivery: Type.Optional(
      Type.Union([Type.Literal('body'), Type.Literal('cookie')], {
        description: 'As for POST /auth/login',
        default: 'body',
      }),
    ),
  },
  { additionalProperties: false, description: 'The MFA token of the login, and `code` or `recovery_code`' },
)

export const ReauthenticateBody = Type.Object(
  { password: CurrentPassword, ...FactorFields },
  {
    additionalProperties: false,
    description: 'Your password, and `code` or `recovery_code` if you have a second factor',
  },
)

export const AccessGrant = Type.Object({
  access_token: Type.String({ description: 'A JWT of the same session, with a new `auth_time`' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
})

export const MfaStatus = Type.Object({
  totp_enabled: Type.Boolean({ description: 'Whether logins ask for a TOTP code' }),
  enabled_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  recovery_codes_remaining: Type.Integer({ minimum: 0, description: 'Unused recovery codes' }),
})

export const TotpEnrolment = Type.Object({
  secret: Type.String({ description: 'The secret in base32, for an app that cannot scan the QR code' }),
  otpauth_uri: Type.String({
    description:
      'otpauth://totp/... (SHA-1, 6 digits, 30 s, issuer and account name): what the QR code holds',
  }),
  qr_svg: Type.String({ description: 'The URI as a QR code: an SVG document' }),
})

export const ConfirmTotpBody = Type.Object({ code: TotpCode }, { additionalProperties: false })

export const RecoveryCodes = Type.Object({
  recovery_codes: Type.Array(Type.String(), {
    minItems: RECOVERY_CODE_COUNT,
    maxItems: RECOVERY_CODE_COUNT,
    description: 'Single-use codes, shown this once: each stands in for a TOTP code (keep them offline)',
  }),
})
