// The tests' own TOTP (test/helpers/totp.ts) gives RFC 6238's Appendix B test values: the codes the MFA tests
// send are right by the RFC, not merely by the library the server uses.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { base32Decode, totp } from '../helpers/totp.ts'

// RFC 6238 Appendix B: the seeds are the ASCII digits 1234567890 repeated to the hash's size.
const SEEDS = {
  sha1: Buffer.from('12345678901234567890'),
  sha256: Buffer.from('12345678901234567890123456789012'),
  sha512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234'),
}

const VECTORS: [number, Record<keyof typeof SEEDS, string>][] = [
  [59, { sha1: '94287082', sha256: '46119246', sha512: '90693936' }],
  [1111111109, { sha1: '07081804', sha256: '68084774', sha512: '25091201' }],
  [1111111111, { sha1: '14050471', sha256: '67062674', sha512: '99943326' }],
  [1234567890, { sha1: '89005924', sha256: '91819424', sha512: '93441116' }],
  [2000000000, { sha1: '69279037', sha256: '90698825', sha512: '38618901' }],
  [20000000000, { sha1: '65353130', sha256: '77737706', sha512: '47863826' }],
]

describe("the tests' TOTP", () => {
  for (const [time, codes] of VECTORS) {
    for (const algorithm of Object.keys(SEEDS) as (keyof typeof SEEDS)[]) {
      it(`gives RFC 6238's ${codes[algorithm]} for ${algorithm.toUpperCase()} at T=${time}`, () => {
        assert.equal(totp(SEEDS[algorithm], time, { digits: 8, algorithm }), codes[algorithm])
      })
    }
  }

  it('reads base32 as RFC 4648 spells it', () => {
    // RFC 4648 section 10.
    assert.equal(base32Decode('MZXW6YTBOI======').toString(), 'foobar')
    assert.equal(base32Decode('MZXW6YQ').toString(), 'foob')
    assert.equal(base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ').toString(), '12345678901234567890')
  })
})
