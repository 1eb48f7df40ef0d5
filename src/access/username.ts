// Usernames are stored as typed (NFKC-normalized) and compared by a folded key, so "Ada", "ADA" and the
// full-width "Ａｄａ" are one account. Confusable letters from different scripts are not folded together;
// instead a new username may not mix scripts (Unicode TS #39, "Highly Restrictive"), so that the Cyrillic
// "аdmin" cannot pass for "admin" beside it (issue 11).
import { remove as removeConfusables } from 'confusables'

/** USERNAME_MAX_LENGTH's default, and the most it may be: what the users columns hold (migration 0009). */
export const DEFAULT_USERNAME_MAX_LENGTH = 32
export const USERNAME_MAX_LENGTH_LIMIT = 254

/**
 * The default rule (USERNAME_PATTERN unset): letters (with their combining marks, which Indic and vocalised
 * scripts need) and digits of any script, plus . _ and -, starting with a letter or digit: 3 to `maxLength`.
 */
const defaultPattern = (maxLength: number) => `^[\\p{L}\\p{N}][\\p{L}\\p{M}\\p{N}._-]{2,${maxLength - 1}}$`

/** The default rule at the default length, as the OpenAPI document shows it. */
export const USERNAME_PATTERN = defaultPattern(DEFAULT_USERNAME_MAX_LENGTH)

/**
 * A configured pattern, anchored by us: `^(?:...)$` holds whatever the operator wrote (`a|b` included) to the
 * whole name. Config validation (config/formats.ts) has checked that it compiles and has no nested repetition.
 */
export const anchoredPattern = (pattern: string) => `^(?:${pattern})$`

/** What a new username must be: one policy, read by the register schema, register(), the CLI and the import. */
export type UsernamePolicy = {
  /** The anchored pattern the JSON Schema (and the OpenAPI document) shows, in Unicode mode. */
  readonly pattern: string
  /** In characters (code points, as JSON Schema counts). */
  readonly maxLength: number
  /** USERNAME_PATTERN is set (else the built-in rule applies). */
  readonly configured: boolean
  /** The rule in words: the schema's description, and the CLI's help. */
  readonly description: string
  /** What is wrong with a new username (NFKC-normalized), as a phrase after "the username", or undefined. */
  problem(normalized: string): string | undefined
}

export type UsernameSettings = { pattern: string | undefined; maxLength: number }

/**
 * USERNAME_PATTERN and USERNAME_MAX_LENGTH as a policy. Unset, the pattern is today's rule up to the maximum
 * length. Either way, the rules that keep look-alikes apart (one script, no invisible letter, one number system)
 * and the case fold of the key apply, so that an email address is as safe a username as any other name.
 */
export function createUsernamePolicy({ pattern, maxLength }: UsernameSettings): UsernamePolicy {
  const source = pattern === undefined ? defaultPattern(maxLength) : anchoredPattern(pattern)
  const regexp = new RegExp(source, 'u')
  const description =
    pattern === undefined
      ? `3 to ${maxLength} letters, digits, ".", "_" or "-", starting with a letter or digit; case-insensitive`
      : `At most ${maxLength} characters matching the pattern; case-insensitive`
  return {
    pattern: source,
    configured: pattern !== undefined,
    maxLength,
    description,
    problem(normalized) {
      // Checked after normalization too: NFKC can turn valid input into something the pattern refuses.
      if ([...normalized].length > maxLength) return `is longer than ${maxLength} characters once normalized`
      // Whatever the pattern allows (`.+`, an email pattern's `[^@\s]`): no control, format or unassigned
      // character (NUL breaks PostgreSQL's text), no line separator, and no space at either end, which would
      // make "admin " another name than "admin" to the eye of no one.
      if (CONTROL_OR_SEPARATOR.test(normalized)) return 'holds a control or invisible character'
      if (/^\s|\s$/u.test(normalized)) return 'begins or ends with a space'
      if (!regexp.test(normalized)) return 'is not a valid username once normalized'
      // The case fold can lengthen a name ("ß" is "ss"): the key must fit its column too.
      if ([...usernameKey(normalized)].length > USERNAME_MAX_LENGTH_LIMIT)
        return 'is too long once case-folded'
      return lookalikeProblem(normalized)
    },
  }
}

const CONTROL_OR_SEPARATOR = /[\p{C}\p{Zl}\p{Zp}]/u

/** The policy at the default settings. */
export const DEFAULT_USERNAME_POLICY = createUsernamePolicy({
  pattern: undefined,
  maxLength: DEFAULT_USERNAME_MAX_LENGTH,
})

export function normalizeUsername(input: string): string {
  return input.normalize('NFKC')
}

/** The unique key: NFKC with a case fold (upper then lower maps "ß" to "ss", as full case folding does). */
export function usernameKey(input: string): string {
  return input.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC')
}

/**
 * What a username looks like, for comparing it with reserved names: look-alike letters of any script mapped
 * to the Latin ones they imitate (`ɑdmin`, `ADMİN`, `ʀoot`, `ѕуѕtem`; the confusables package), case folded,
 * and the separators and digits that make a look-alike of `admin` (`adm_in`, `admin0`) left out.
 */
export function lookalikeKey(input: string): string {
  return usernameKey(removeConfusables(usernameKey(input))).replace(/[\p{N}._-]/gu, '')
}

/** What is wrong with a new username under the default policy (see createUsernamePolicy), or undefined. */
export function usernameProblem(normalized: string): string | undefined {
  return DEFAULT_USERNAME_POLICY.problem(normalized)
}

/**
 * What makes a name pass for another, as a phrase after "the username", or undefined: an invisible letter (the
 * Hangul fillers are letters that show as nothing), more than one script (but Latin with Han and kana, Bopomofo
 * or Hangul), or digits of several number systems. Existing usernames are not checked: these rules apply to new
 * accounts.
 */
function lookalikeProblem(normalized: string): string | undefined {
  // ASCII letters, digits and symbols are Latin and Common only: nothing below can refuse them.
  if (/^[\x20-\x7e]*$/.test(normalized)) return undefined
  if (INVISIBLE.test(normalized)) return 'holds an invisible character'
  const mixed = mixedScripts([...normalized])
  if (mixed) return `mixes scripts (${mixed.join(', ')}); use letters of one script`
  if (mixesNumberSystems([...normalized])) return 'mixes digits of different number systems'
  return undefined
}

const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u

// Every script of Unicode 17 (Node 24's), by its ECMAScript name; test/unit/username.test.ts checks that every
// assigned character belongs to one of these, Common or Inherited, so a Node that knows a new script says so.
const SCRIPTS =
  `Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak Bengali
  Beria_Erfe Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian Caucasian_Albanian Chakma
  Cham Cherokee Chorasmian Coptic Cuneiform Cypriot Cypro_Minoan Cyrillic Deseret Devanagari Dives_Akuru Dogra
  Duployan Egyptian_Hieroglyphs Elbasan Elymaic Ethiopic Garay Georgian Glagolitic Gothic Grantha Greek Gujarati
  Gunjala_Gondi Gurmukhi Gurung_Khema Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana Imperial_Aramaic
  Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kannada Katakana Kawi Kayah_Li Kharoshthi
  Khitan_Small_Script Khmer Khojki Khudawadi Kirat_Rai Lao Latin Lepcha Limbu Linear_A Linear_B Lisu Lycian Lydian
  Mahajani Makasar Malayalam Mandaic Manichaean Marchen Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui
  Meroitic_Cursive Meroitic_Hieroglyphs Miao Modi Mongolian Mro Multani Myanmar Nabataean Nag_Mundari Nandinagari
  New_Tai_Lue Newa Nko Nushu Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Ol_Onal Old_Hungarian Old_Italic
  Old_North_Arabian Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Oriya Osage
  Osmanya Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic Samaritan
  Saurashtra Sharada Shavian Siddham SignWriting Sidetic Sinhala Sogdian Sora_Sompeng Soyombo Sundanese Sunuwar
  Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham Tai_Viet Tai_Yo Takri Tamil Tangsa Tangut Telugu Thaana
  Thai Tibetan Tifinagh Tirhuta Todhri Tolong_Siki Toto Tulu_Tigalari Ugaritic Vai Vithkuqi Wancho Warang_Citi
  Yezidi Yi Zanabazar_Square`.split(/\s+/)

// Script_Extensions, not Script: a character shared by some scripts (a Japanese prolonged sound mark, an
// Arabic comma) counts as any of them, and a Common or Inherited one (ASCII digits, _) as every script.
const SCRIPT_TESTS = SCRIPTS.map((name) => ({ name, test: new RegExp(`\\p{scx=${name}}`, 'u') }))
const ANY_SCRIPT = /[\p{scx=Common}\p{scx=Inherited}]/u
export const KNOWN_SCRIPT = new RegExp(
  `[${SCRIPTS.map((name) => `\\p{scx=${name}}`).join('')}\\p{scx=Common}\\p{scx=Inherited}]`,
  'u',
)

// UTS #39 section 5.1: Han is also written in Japanese (with kana), Korean (with Hangul) and with Bopomofo.
const AUGMENTED: Record<string, string[]> = {
  Han: ['Japanese', 'Korean', 'Han_with_Bopomofo'],
  Hiragana: ['Japanese'],
  Katakana: ['Japanese'],
  Hangul: ['Korean'],
  Bopomofo: ['Han_with_Bopomofo'],
}

// UTS #39 section 5.2, "Highly Restrictive": one script, or Latin beside one of these East Asian sets.
const ALLOWED_MIXES = [
  ['Latin', 'Han', 'Hiragana', 'Katakana'],
  ['Latin', 'Han', 'Bopomofo'],
  ['Latin', 'Han', 'Hangul'],
]

/** The scripts of a character; undefined for a Common or Inherited one, which goes with any script. */
function scriptsOf(char: string): string[] | undefined {
  if (ANY_SCRIPT.test(char)) return undefined
  const scripts = SCRIPT_TESTS.filter(({ test }) => test.test(char)).map(({ name }) => name)
  // A script Node knows and this list does not: a script of its own, mixed with no other.
  return scripts.length > 0 ? scripts : [`U+${char.codePointAt(0)?.toString(16).toUpperCase()}`]
}

/** The scripts a username mixes (one name per character's first script), or undefined when it does not. */
function mixedScripts(chars: string[]): string[] | undefined {
  const perChar = chars.map(scriptsOf).filter((scripts) => scripts !== undefined)
  const augmented = perChar.map((scripts) => new Set(scripts.flatMap((s) => [s, ...(AUGMENTED[s] ?? [])])))
  const [first, ...rest] = augmented
  if (!first || [...first].some((script) => rest.every((set) => set.has(script)))) return undefined
  if (ALLOWED_MIXES.some((mix) => perChar.every((scripts) => scripts.some((s) => mix.includes(s))))) {
    return undefined
  }
  return [...new Set(perChar.map((scripts) => (scripts[0] ?? '').replaceAll('_', ' ')))]
}

const DECIMAL_DIGIT = /\p{Nd}/u

/**
 * UTS #39 section 5.3: the digits of one username come from one run of 0 to 9 ("1" beside the Arabic-Indic
 * "١" is refused). Unicode encodes decimal digits only in whole runs of ten, from 0, so a digit's zero is found
 * by walking back to the start of its block of runs.
 */
function mixesNumberSystems(chars: string[]): boolean {
  const zeros = new Set<number>()
  for (const char of chars) {
    if (!DECIMAL_DIGIT.test(char)) continue
    const code = char.codePointAt(0) ?? 0
    let start = code
    while (DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--
    zeros.add(start + Math.floor((code - start) / 10) * 10)
  }
  return zeros.size > 1
}
