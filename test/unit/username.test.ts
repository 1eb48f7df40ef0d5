// The script check behind new usernames (issue 11): the list of scripts it knows must cover every character
// this Node knows, or a new script's letters would be checked against no script at all.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  createUsernamePolicy,
  KNOWN_SCRIPT,
  normalizeUsername,
  usernameProblem,
} from '../../src/access/username.ts'

describe('the username rules (issue 11)', () => {
  it("lists every script of this Node's Unicode: each assigned character belongs to one, or to Common or Inherited", () => {
    const unknown: string[] = []
    for (let code = 0; code <= 0x10ffff; code++) {
      if (code >= 0xd800 && code <= 0xdfff) continue
      const char = String.fromCodePoint(code)
      // Unassigned and private-use characters have no script; neither can pass the username pattern.
      if (/[\p{Cn}\p{Co}]/u.test(char) || KNOWN_SCRIPT.test(char)) continue
      unknown.push(`U+${code.toString(16).toUpperCase()}`)
    }
    assert.deepEqual(
      unknown.slice(0, 10),
      [],
      `Unicode ${process.versions.unicode}: add their scripts to SCRIPTS`,
    )
  })

  it('names the scripts a refused username mixes', () => {
    assert.equal(
      usernameProblem(normalizeUsername('p\u0430ypal')),
      'mixes scripts (Latin, Cyrillic); use letters of one script',
    )
  })

  it('takes characters shared by scripts as any of them: a Japanese prolonged sound mark beside katakana or hiragana', () => {
    for (const username of ['ラーメン', 'らーめん', 'Ｒａｍｅｎラーメン']) {
      assert.equal(usernameProblem(normalizeUsername(username)), undefined, username)
    }
  })

  it('refuses Hangul with kana, which no one writes together, but accepts each beside Han and Latin', () => {
    assert.match(usernameProblem('김たろう') ?? '', /mixes scripts \(Hangul, Hiragana\)/)
    assert.equal(usernameProblem('kim김金'), undefined)
    assert.equal(usernameProblem('taro太郎たろう'), undefined)
  })
})

describe('a configured USERNAME_PATTERN (issue 18)', () => {
  it('still refuses control and invisible characters, line separators and spaces at either end, whatever it allows', () => {
    const email = createUsernamePolicy({ pattern: '[^@\\s]+@[^@\\s]+\\.[^@\\s]+', maxLength: 254 })
    assert.equal(email.problem('ada@example.com'), undefined)
    for (const name of ['ada\u0000@example.com', 'ada\u0007@x.io', 'admin\u0085@x.io', 'ada\u200b@x.io']) {
      assert.match(String(email.problem(name)), /control or invisible/, JSON.stringify(name))
    }
    const anything = createUsernamePolicy({ pattern: '.+', maxLength: 254 })
    for (const name of ['admin ', ' admin'])
      assert.equal(anything.problem(name), 'begins or ends with a space')
    assert.match(String(anything.problem('admin\u2028')), /control or invisible/)
    assert.equal(anything.problem('ad min'), undefined)
  })
})
