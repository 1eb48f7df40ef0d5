// TOTP codes for tests, computed here from RFC 6238 with node:crypto, and not by the library the server uses
// (otpauth): a fault shared by both could not hide. Checked against the RFC's Appendix B in
// test/unit/totp.test.ts.
import { createHmac } from 'node:crypto'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** RFC 4648 base32, as otpauth:// URIs and authenticator apps spell secrets (padding optional). */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/=+$/, '').toUpperCase()
  let bits = 0
  let value = 0
  const bytes: number[] = []
  for (const char of clean) {
    const index = BASE32.indexOf(char)
    if (index < 0) throw new Error(`not base32: ${char}`)
    value = (value << 5) | index
    bits += 5
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(bytes)
}

/** RFC 6238: the HOTP (RFC 4226) of the time step floor(seconds / period). */
export function totp(
  secret: Buffer,
  unixSeconds: number,
  {
    digits = 6,
    period = 30,
    algorithm = 'sha1',
  }: { digits?: number; period?: number; algorithm?: string } = {},
): string {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / period)))
  const mac = createHmac(algorithm, secret).update(counter).digest()
  const offset = (mac.at(-1) as number) & 0x0f
  const binary = mac.readUInt32BE(offset) & 0x7fffffff
  return String(binary % 10 ** digits).padStart(digits, '0')
}
