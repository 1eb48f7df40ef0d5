// The kinds a setting can be, and how each is read from its text, checked, and described. The one phrase that
// says what a setting accepts serves both its error message and its README row; the settings themselves are
// declared in config.schema.ts.

type Common = {
  /** What the setting does, for the README; its kind, range and default are shown beside it, not repeated. */
  readonly description: string
  /** Holds, or may hold, a password or key: its value is never echoed in an error message. */
  readonly secret?: boolean
}

export type IntegerSetting = Common & {
  readonly kind: 'integer'
  readonly min: number
  readonly max: number
  readonly default?: number
}
export type EnumSetting = Common & {
  readonly kind: 'enum'
  readonly choices: readonly string[]
  readonly default?: string
}
/** `true` or `1`, `false` or `0`. */
export type BooleanSetting = Common & { readonly kind: 'boolean'; readonly default?: boolean }
export type UrlSetting = Common & {
  readonly kind: 'url'
  /** The schemes accepted (`redis:`), each then needing a host; any absolute URL when absent. */
  readonly protocols?: readonly string[]
  readonly default?: string
}
export type StringSetting = Common & {
  readonly kind: 'string'
  /** The shortest value accepted, in bytes of UTF-8 (what a key made from the text has), not characters. */
  readonly minBytes?: number
  /** A secret that must come from a random generator: one that plainly does not (looksPredictable) is refused. */
  readonly random?: boolean
  /** The form the text must have, beyond its length. */
  readonly format?: Format
  /** Added to the error message: how to make a good value. */
  readonly hint?: string
  readonly default?: string
}
/**
 * A form of text: `accepts` is the phrase that follows "must be" in the error message and stands in the README
 * table ("a URL path starting with /"); `pattern` matches the whole text, or a function says whether it fits.
 */
export type Format = {
  readonly accepts: string
  readonly pattern: RegExp | ((text: string) => boolean)
}
export type Setting = IntegerSetting | EnumSetting | BooleanSetting | UrlSetting | StringSetting

/** The type a setting's value has in the program: from its kind (an enum's is the union of its choices). */
export type ValueOfKind<S> = S extends { kind: 'integer' }
  ? number
  : S extends { kind: 'boolean' }
    ? boolean
    : S extends { kind: 'enum'; choices: readonly (infer C extends string)[] }
      ? C
      : string

/** Every declared setting's value, `undefined` where the setting has no default and is not set. */
export type ValuesOf<D> = {
  readonly [N in keyof D]: ValueOfKind<D[N]> | (D[N] extends { default: unknown } ? never : undefined)
}

export type Env = Readonly<Record<string, string | undefined>>

/** Fewer different characters than this, and a secret is refused as predictable. */
export const MIN_DISTINCT_CHARACTERS = 10
// Longer repeated units are not looked for: they are no placeholder, and the search costs length x unit.
const MAX_REPEATED_UNIT = 256
const RANDOM_RULE = `at least ${MIN_DISTINCT_CHARACTERS} distinct characters, not one short text repeated`

/**
 * Whether a secret plainly did not come from a random generator: fewer than MIN_DISTINCT_CHARACTERS different
 * characters (`aaaa…`, `abab…`), or one short text repeated (`changeme-changeme-…`, `0123456789012…`). A
 * cheap guard against placeholders and slips, not a measure of strength: it passes `openssl rand` output of
 * any length the settings accept (and 32 hex digits but once in 10,000 draws), and refuses what a person
 * would type to fill the field.
 */
export function looksPredictable(text: string): boolean {
  if (new Set(text).size < MIN_DISTINCT_CHARACTERS) return true
  const longest = Math.min(Math.floor(text.length / 2), MAX_REPEATED_UNIT)
  // A period p: every character equals the one p places before it.
  for (let period = 1; period <= longest; period++) {
    if (text.slice(period) === text.slice(0, text.length - period)) return true
  }
  return false
}

/**
 * What a setting accepts, as a phrase that follows "must be": "a whole number from 30 to 86400". `code`
 * marks up literal values (backticks in the README).
 */
export function allowedValues(setting: Setting, code = (text: string) => text): string {
  switch (setting.kind) {
    case 'integer':
      return `a whole number from ${setting.min} to ${setting.max}`
    case 'enum':
      return `one of ${setting.choices.map(code).join(', ')}`
    case 'boolean':
      return `${code('true')} or ${code('false')}`
    case 'url':
      return setting.protocols === undefined
        ? 'an absolute URL'
        : `a ${setting.protocols.map((protocol) => code(`${protocol}//`)).join(' or ')} URL`
    case 'string': {
      const rules = [
        ...(setting.format === undefined ? [] : [setting.format.accepts]),
        ...(setting.minBytes === undefined ? [] : [`at least ${setting.minBytes} bytes (UTF-8)`]),
        ...(setting.random ? [RANDOM_RULE] : []),
      ]
      return rules.length === 0 ? 'any text' : rules.join(', with ')
    }
  }
}

const fits = ({ pattern }: Format, text: string) =>
  typeof pattern === 'function' ? pattern(text) : pattern.test(text)

type Parsed = { value: number | boolean | string } | { problem: string }

function parse(name: string, setting: Setting, text: string): Parsed {
  const hint = setting.kind === 'string' && setting.hint !== undefined ? `; ${setting.hint}` : ''
  const refused = (): Parsed => {
    const got = setting.secret ? '' : `; got "${text}"`
    return { problem: `${name} must be ${allowedValues(setting)}${got}${hint}` }
  }
  switch (setting.kind) {
    case 'integer': {
      const value = Number(text)
      return /^\d+$/.test(text) && value >= setting.min && value <= setting.max ? { value } : refused()
    }
    case 'enum':
      return setting.choices.includes(text) ? { value: text } : refused()
    case 'boolean':
      if (text === 'true' || text === '1') return { value: true }
      if (text === 'false' || text === '0') return { value: false }
      return refused()
    case 'url': {
      const url = URL.parse(text)
      if (url === null) return refused()
      if (setting.protocols === undefined) return { value: text }
      return setting.protocols.includes(url.protocol) && url.host !== '' ? { value: text } : refused()
    }
    case 'string':
      if (Buffer.byteLength(text) < (setting.minBytes ?? 0)) return refused()
      if (setting.format !== undefined && !fits(setting.format, text)) return refused()
      if (setting.random && looksPredictable(text)) {
        // Never echoed, whatever the setting: it was meant to be a secret.
        return { problem: `${name} looks predictable: it needs ${RANDOM_RULE}${hint}` }
      }
      return { value: text }
  }
}

/**
 * Reads every declared setting from the environment, unset or empty meaning its default. A bad value is
 * reported (one problem each) and read as the default, and its name is kept in `invalid`, so that checks
 * across settings can leave alone what was already reported.
 */
export function readSettings<D extends Readonly<Record<string, Setting>>>(
  declared: D,
  env: Env,
): { values: ValuesOf<D>; problems: string[]; invalid: ReadonlySet<string> } {
  const values: Record<string, unknown> = {}
  const problems: string[] = []
  const invalid = new Set<string>()
  for (const [name, setting] of Object.entries<Setting>(declared)) {
    values[name] = setting.default
    const text = env[name]
    if (text === undefined || text === '') continue
    const parsed = parse(name, setting, text)
    if ('problem' in parsed) {
      problems.push(parsed.problem)
      invalid.add(name)
    } else {
      values[name] = parsed.value
    }
  }
  // Each value was read by its declaration's kind, which is what ValuesOf says of it.
  return { values: values as ValuesOf<D>, problems, invalid }
}
