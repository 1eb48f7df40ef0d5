// Every new password (register, change, reset) passes the same checks: the rules of issue 11 (password-policy.ts),
// then, with PWNED_PASSWORDS_URL, the breach check (breached-passwords.ts), which may take a network round trip
// and so runs last, and outside any transaction.
import { AppError } from '../http/problem.ts'
import type { BreachedPasswordCheck } from './breached-passwords.ts'
import { passwordProblem } from './password-policy.ts'

export type NewPasswordCheck = {
  /** What is wrong with the new password of `username`, as a phrase after "the password", or undefined. */
  problem(password: string, username: string): Promise<string | undefined>
  /** Throws 400 validation_failed naming `field` (a JSON Pointer) when the password may not be used. */
  check(password: string, username: string, field: string): Promise<void>
}

export const BREACHED = 'appears in known data breaches (Pwned Passwords); choose another'

export function createNewPasswordCheck(isBreached: BreachedPasswordCheck): NewPasswordCheck {
  const problem = async (password: string, username: string) =>
    passwordProblem(password, username) ?? ((await isBreached(password)) ? BREACHED : undefined)
  return {
    problem,
    async check(password, username, field) {
      const found = await problem(password, username)
      if (found) {
        throw new AppError('validation_failed', 'One or more fields are not valid; see errors.', {
          errors: [{ field, message: found }],
        })
      }
    },
  }
}
