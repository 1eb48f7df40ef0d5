// The forms of text some string settings must have, each with the phrase that says what it accepts (in the
// error message and the README table). config.schema.ts names them in its declarations.
import safeRegex from 'safe-regex2'
import type { Format } from './setting.ts'

// A dotted event type (`login.failed`), a family (`login.*`), or every type (`*`).
const EVENT_FILTER = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$/

/** WEBHOOK_EVENTS: at least one event filter, comma-separated, blanks around them ignored. */
export const EVENT_FILTERS: Format = {
  accepts: '`*` or event types separated by commas (`login.failed,user.*`)',
  pattern: (text) => {
    const filters = text
      .split(',')
      .map((filter) => filter.trim())
      .filter((filter) => filter !== '')
    return filters.length > 0 && filters.every((filter) => EVENT_FILTER.test(filter))
  },
}

/** The secrets of a WEBHOOK_SECRET-like setting, which separates them by white space. */
export const webhookSecretsIn = (text: string) => text.split(/\s+/).filter((secret) => secret !== '')

/**
 * The Standard Webhooks form of a symmetric secret: `whsec_` and the base64 of 24 to 64 bytes. The key is the
 * decoded bytes, so a secret typed as text would be decoded into some other key without a word: refused.
 */
function isWebhookSecret(secret: string): boolean {
  const base64 = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret)?.[1]
  if (base64 === undefined || base64.length % 4 !== 0) return false
  const bytes = Buffer.from(base64, 'base64').length
  return bytes >= 24 && bytes <= 64
}

/** WEBHOOK_SECRET, PASSWORD_RESET_WEBHOOK_SECRET: one secret or several (while rotating). */
export const WEBHOOK_SECRETS: Format = {
  accepts: '`whsec_` followed by the base64 of 24 to 64 random bytes (several separated by spaces)',
  pattern: (text) => {
    const secrets = webhookSecretsIn(text)
    return secrets.length > 0 && secrets.every(isWebhookSecret)
  },
}
export const WEBHOOK_SECRET_HINT = 'generate one with `echo whsec_$(openssl rand -base64 32)`'

/** PASSWORD_RESET_PATH: what follows PUBLIC_URL in a link. */
export const URL_PATH: Format = {
  accepts: 'a URL path starting with / (no query or fragment)',
  pattern: /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/,
}

/** An origin as browsers send it in `Origin`: scheme, host and port only, no path or trailing slash. */
const ORIGIN = /^https?:\/\/([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:\d{1,5})?$/
/** A scheme's default port, which browsers leave out of `Origin`: written, the origin would never match. */
const DEFAULT_PORT = /^(https:\/\/.*:443|http:\/\/.*:80)$/

/** CORS_ORIGINS: exact origins, comma-separated; a lone `,` names none. */
export const ORIGINS: Format = {
  accepts:
    'exact origins separated by commas, as browsers send them (`https://app.example.com,http://localhost:5173`: no path, no default port), or `,` for none',
  pattern: (text) =>
    text
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin !== '')
      .every((origin) => ORIGIN.test(origin) && !DEFAULT_PORT.test(origin)),
}

/** Whether `source` compiles as a JavaScript regular expression in Unicode mode (as Ajv compiles patterns). */
function compiles(source: string): boolean {
  try {
    new RegExp(source, 'u')
    return true
  } catch {
    return false
  }
}

/**
 * Whether a group holding an alternation (`|`, at any depth) is repeated without bound (`*`, `+`, `{n,}`,
 * `{n,m}` with m above 1): `(a|a)*` and `(\w|[a-z.])+` backtrack exponentially on a name that almost matches,
 * and safe-regex2 does not see it (it counts nested repetition only). A scan, not a parser: escapes and
 * character classes are skipped, and it errs on the side of refusing.
 */
export function repeatsAlternation(pattern: string): boolean {
  const groups: boolean[] = [] // per open group: whether it holds a `|`
  let inClass = false
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]
    if (char === '\\') {
      i++
      continue
    }
    if (inClass) {
      if (char === ']') inClass = false
      continue
    }
    if (char === '[') inClass = true
    else if (char === '(') groups.push(false)
    else if (char === '|' && groups.length > 0) groups[groups.length - 1] = true
    else if (char === ')') {
      const alternates = groups.pop() ?? false
      if (alternates && /^(?:[*+]|\{\d+,(?:\d*[2-9]\d*|\d{2,})?\})/.test(pattern.slice(i + 1))) return true
      if (alternates && groups.length > 0) groups[groups.length - 1] = true
    }
  }
  return false
}

/**
 * USERNAME_PATTERN: a regular expression that compiles on its own (so that `a)|(b` cannot undo the anchors the
 * username policy puts around it) and anchored, with no nested repetition such as `(a+)+` (safe-regex2's
 * star-height check, as Fastify's router uses) and no repeated alternation such as `(a|b)+`, whose
 * backtracking can take exponential time on a crafted name. Cheap, and it errs on the side of refusing.
 */
export const USERNAME_REGEXP: Format = {
  accepts:
    'a JavaScript regular expression (Unicode mode) without nested repetition such as `(a+)+` or repeated alternation such as `(a|b)+`',
  pattern: (text) =>
    compiles(text) && compiles(`^(?:${text})$`) && safeRegex(`^(?:${text})$`) && !repeatsAlternation(text),
}
