// TOTP (RFC 6238) with the parameters every common authenticator app reads from an `otpauth://` URI: SHA-1,
// 6 digits, 30-second steps, a 160-bit secret (RFC 4226's recommendation). Codes are checked by otpauth; this
// module adds what it leaves to us: the time step a code matched, so that a caller can accept each step once
// (RFC 6238 section 5.2), and the clock, injected. QR codes are drawn by qrcode, loaded on first use.
import { randomBytes } from 'node:crypto'
import { Secret, TOTP } from 'otpauth'
import type { Clock } from '../lib/clock.ts'

export const TOTP_PERIOD_SECONDS = 30
export const TOTP_DIGITS = 6
const SECRET_BYTES = 20
/** Steps accepted either side of now: one, for a clock that drifts or a code typed as it changes. */
const DRIFT_STEPS = 1

export type TotpSecret = Buffer

export function newTotpSecret(): TotpSecret {
  return randomBytes(SECRET_BYTES)
}

const totpOf = (secret: TotpSecret, issuer = '', label = '') =>
  new TOTP({
    issuer,
    label,
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    secret: new Secret({ buffer: new Uint8Array(secret).buffer }),
  })

/** The secret as authenticator apps take it typed in: base32, without padding. */
export const base32Of = (secret: TotpSecret) => totpOf(secret).secret.base32

/** The `otpauth://totp/...` URI of the secret, for the account `label` of `issuer`. */
export const otpauthUri = (secret: TotpSecret, issuer: string, label: string) =>
  totpOf(secret, issuer, label).toString()

/** The URI as a QR code, an SVG document. */
export async function qrSvg(uri: string): Promise<string> {
  const { default: qrcode } = await import('qrcode')
  return qrcode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
}

const CODE = new RegExp(`^\\d{${TOTP_DIGITS}}$`)

/**
 * The time step whose code `code` is, within one step of now, or undefined. The caller accepts a step only if
 * it is later than the last one accepted: a code then works once.
 */
export function matchingStep(secret: TotpSecret, code: string, clock: Clock): number | undefined {
  if (!CODE.test(code)) return undefined
  const timestamp = clock.now()
  const delta = totpOf(secret).validate({ token: code, timestamp, window: DRIFT_STEPS })
  if (delta === null) return undefined
  return TOTP.counter({ period: TOTP_PERIOD_SECONDS, timestamp }) + delta
}
