// What the routes that check a second factor share: how a request names its factor (`code` or `recovery_code`),
// how its code checks are counted, and how recent an authentication the sensitive routes ask for.
import type { FastifyRequest } from 'fastify'
import { AppError } from '../http/problem.ts'
import type { CountCodeCheck, FactorProof } from './mfa.service.ts'

/** How recent an authentication the sensitive routes ask for (password change, enrolling a factor). */
export const RECENT_AUTHENTICATION_SECONDS = 300

/** A code check counted against the account's limit (RATE_LIMIT_MFA_PER_ACCOUNT), declared by the route. */
export const countCodeChecks =
  (request: FastifyRequest): CountCodeCheck =>
  (userId, device) =>
    request.countLimit('mfaPerAccount', `${userId} ${device}`)

/**
 * `code` or `recovery_code`: one of them, never both (a 400 naming the field); with `required: false`, also
 * neither (reauthenticating, for a user without a factor).
 */
export function oneFactor(body: FactorProof, { required = true } = {}): FactorProof {
  const given = [body.code, body.recovery_code].filter((value) => value !== undefined).length
  if (given === 1 || (given === 0 && !required)) return body
  throw new AppError('validation_failed', 'One or more fields are not valid; see errors.', {
    errors: [
      {
        field: given === 0 ? '/body/code' : '/body/recovery_code',
        message: given === 0 ? 'is required (or send recovery_code)' : 'send code or recovery_code, not both',
      },
    ],
  })
}
