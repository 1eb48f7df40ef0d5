// Device tokens (the OWASP Authentication Cheat Sheet's "device cookies"): a successful login hands the client a
// token bound to the account, and later logins that present it are counted apart from everyone else's, so that
// failures others cause never slow its holder down (lockout.ts). Stateless: `<device>.<expires>.<mac>`, the MAC
// an HMAC-SHA-256 under a server secret of the username key, device id and expiry. The account is in the MAC,
// not in the token: a token says nothing about whose it is, and is worthless for any other username.
// A token handed out by a login completed with a second factor says so, in its MAC alone (issue 15): only such a
// device has counts of its own at a login's second step, so that tokens gathered with the password alone, before
// the owner enrolled, cannot each bring a new allowance of guessed codes.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { randomToken } from '../lib/ids.ts'

export type DeviceToken = { token: string; device: string; expiresIn: number }

/** A valid token's device, and whether the login that handed it out was completed with a second factor. */
export type VerifiedDevice = { device: string; secondFactor: boolean }

export interface DeviceTokens {
  /**
   * A token for the account: for `device` (renewing the one a client holds), or for a new device;
   * `secondFactor`: the login that hands it out was completed with one.
   */
  issue(usernameKey: string, device?: string, secondFactor?: boolean): DeviceToken
  /** The device of a token issued for this account and not expired; undefined for anything else. */
  verify(usernameKey: string, token: unknown): VerifiedDevice | undefined
}

const FORMAT = /^([A-Za-z0-9_-]{22})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/

export function createDeviceTokens(key: Buffer, clock: Clock, ttlSeconds: number): DeviceTokens {
  // Two domains: tokens of password logins keep the form they had before issue 15, so they stay valid.
  const mac = (usernameKey: string, device: string, expires: number, secondFactor: boolean) =>
    createHmac('sha256', key)
      .update(`tessera-device-token${secondFactor ? '-2fa' : ''}\0${usernameKey}\0${device}\0${expires}`)
      .digest()

  return {
    issue(usernameKey, device = randomToken(16), secondFactor = false) {
      const expires = epochSeconds(clock) + ttlSeconds
      const tag = mac(usernameKey, device, expires, secondFactor).toString('base64url')
      return { token: `${device}.${expires}.${tag}`, device, expiresIn: ttlSeconds }
    },

    verify(usernameKey, token) {
      if (typeof token !== 'string') return undefined
      const match = FORMAT.exec(token)
      if (!match) return undefined
      const [, device = '', expiresText = '', tag = ''] = match
      const expires = Number(expiresText)
      if (expires <= epochSeconds(clock)) return undefined
      const given = Buffer.from(tag, 'base64url')
      const matches = (secondFactor: boolean) => {
        const expected = mac(usernameKey, device, expires, secondFactor)
        return given.length === expected.length && timingSafeEqual(given, expected)
      }
      if (matches(false)) return { device, secondFactor: false }
      return matches(true) ? { device, secondFactor: true } : undefined
    },
  }
}
