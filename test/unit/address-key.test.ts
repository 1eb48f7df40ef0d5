import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { addressKey } from '../../src/rate-limits/rate-limiter.ts'

describe('the address a rate limit counts under', () => {
  it('is the address itself for IPv4, also when written as IPv4-mapped IPv6', () => {
    assert.equal(addressKey('203.0.113.7'), '203.0.113.7')
    assert.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7')
  })

  it('is the /64 for IPv6, however the address is written', () => {
    const key = '2001:db8:0:1::/64'
    for (const ip of ['2001:db8:0:1::1', '2001:db8::1:0:0:0:99', '2001:0DB8:0000:0001:ffff:ffff:ffff:ffff']) {
      assert.equal(addressKey(ip), key, ip)
    }
    assert.notEqual(addressKey('2001:db8:0:2::1'), key)
    assert.equal(addressKey('::1'), '0:0:0:0::/64')
    assert.equal(addressKey('fe80::'), 'fe80:0:0:0::/64')
  })
})
