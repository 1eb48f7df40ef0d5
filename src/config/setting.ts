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
  readonly minLength?: number
  /** Added to the error message: how to make a good value. */
  readonly hint?: string
  readonly default?: string
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
    case 'string':
      return setting.minLength === undefined ? 'any text' : `at least ${setting.minLength} characters`
  }
}

type Parsed = { value: number | boolean | string } | { problem: string }

function parse(name: string, setting: Setting, text: string): Parsed {
  const refused = (): Parsed => {
    const got = setting.secret ? '' : `; got "${text}"`
    const hint = setting.kind === 'string' && setting.hint !== undefined ? `; ${setting.hint}` : ''
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
      return text.length >= (setting.minLength ?? 0) ? { value: text } : refused()
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
