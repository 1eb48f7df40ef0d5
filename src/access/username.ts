// Usernames are stored as typed (NFKC-normalized) and compared by a folded key, so "Ada", "ADA" and the
// full-width "Ａｄａ" are one account. Confusable letters from different scripts are not folded together.

/** Letters and digits of any script, plus . _ and -, starting with a letter or digit: 3 to 32 characters. */
export const USERNAME_PATTERN = '^[\\p{L}\\p{N}][\\p{L}\\p{N}._-]{2,31}$'
const USERNAME_REGEXP = new RegExp(USERNAME_PATTERN, 'u')

export function normalizeUsername(input: string): string {
  return input.normalize('NFKC')
}

/** The unique key: NFKC with a case fold (upper then lower maps "ß" to "ss", as full case folding does). */
export function usernameKey(input: string): string {
  return input.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC')
}

/** Checked after normalization too: NFKC can turn valid input into something the pattern refuses. */
export function isValidUsername(normalized: string): boolean {
  return USERNAME_REGEXP.test(normalized)
}
