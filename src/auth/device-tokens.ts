// Device tokens (the OWASP Authentication Cheat Sheet's "device cookies"): a successful login hands the client a
// token bound to the account, and later logins that present it are counted apart from everyone else's, so that
// failures others cause never slow its holder down (lockout.ts). Stateless: `<device>.<expires>.<mac>`, the MAC
// an HMAC-SHA-256 under a server secret of the username key, device id and expiry. The account is in the MAC,
// not in the token: a token says nothing about whose it is, and is worthless for any other username.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { randomToken } from '../lib/ids.ts'

export type DeviceToken = { token: string; device: string; expiresIn: number }

export interface DeviceTokens {
  /** A token for the account: for `device` (renewing the one a client holds), or for a new device. */
  issue(usernameKey: string, device?: string): DeviceToken
  /** The device id of a token issued for this account and not expired; undefined for anything else. */
  verify(usernameKey: string, token: unknown): string | undefined
}

const FORMAT = /^([A-Za-z0-9_-]{22})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/

export function createDeviceTokens(key: Buffer, clock: Clock, ttlSeconds: number): DeviceTokens {
  const mac = (usernameKey: string, device: string, expires: number) =>
    createHmac('sha256', key).update(`tessera-device-token\0${usernameKey}\0${device}\0${expires}`).digest()

  return {
    issue(usernameKey, device = randomToken(16)) {
      const expires = epochSeconds(clock) + ttlSeconds
      const tag = mac(usernameKey, device, expires).toString('base64url')
      return { token: `${device}.${expires}.${tag}`, device, expiresIn: ttlSeconds }
    },

    verify(usernameKey, token) {
      if (typeof token !== 'string') return undefined
      const match = FORMAT.exec(token)
      if (!match) return undefined
      const [, device = '', expiresText = '', tag = ''] = match
      const expires = Number(expiresText)
      if (expires <= epochSeconds(clock)) return undefined
      const expected = mac(usernameKey, device, expires)
      const given = Buffer.from(tag, 'base64url')
      return given.length === expected.length && timingSafeEqual(given, expected) ? device : undefined
    },
  }
}
