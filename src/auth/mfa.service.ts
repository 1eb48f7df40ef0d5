// A second factor (issue 15, decision 0015): TOTP enrolment and its recovery codes, the check of a code or a
// recovery code wherever one is asked for, and the challenge that stands between a right password and a
// session for a user who has a factor. Passwords are checked by auth.service.ts, which calls this.
// Secrets at rest: the TOTP secret is sealed like signing keys (a JWE under KEY_ENCRYPTION_SECRET when set);
// recovery codes are kept as HMACs under a server secret; a challenge's secret half as a SHA-256.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { AuthStateCache } from '../access/auth-state.ts'
import { sessionDevice } from '../access/session-device.ts'
import type { Transact } from '../db/transact.ts'
import type { EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import { AppError } from '../http/problem.ts'
import type { KeyEncryption } from '../keys/key-encryption.ts'
import { type Clock, epochSeconds, isoTime } from '../lib/clock.ts'
import { randomToken } from '../lib/ids.ts'
import type { SessionRepository } from '../sessions/session.repository.ts'
import type { MfaChallenge, MfaRepository } from './mfa.repository.ts'
import { base32Of, matchingStep, newTotpSecret, otpauthUri, qrSvg, type TotpSecret } from './totp.ts'

export const RECOVERY_CODE_COUNT = 10
/** A login's second step must come within this time of its password. */
export const MFA_CHALLENGE_TTL_SECONDS = 300
/** Codes tried on one challenge before it dies (the account's limits count them too). */
export const MFA_CHALLENGE_ATTEMPTS = 5
/** An enrolment not confirmed by then is forgotten. */
export const ENROLMENT_TTL_SECONDS = 600

// Crockford's base32, lower case: no i, l, o or u to misread. 12 characters: 60 bits.
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const RECOVERY_CODE_LENGTH = 12
const SELECTOR_LENGTH = 16
const CHALLENGE_TOKEN = /^[A-Za-z0-9_-]{59}$/

/** A second factor as a request gives it: a TOTP code, or a recovery code. */
export type FactorProof = { code?: string | undefined; recovery_code?: string | undefined }

/** What a proof turned out to be, if it held: the code of the factor, or a recovery code (spent). */
export type FactorUsed = 'totp' | 'recovery_code'

/**
 * Counts a code check against the account's limit (RATE_LIMIT_MFA_PER_ACCOUNT), per device as the slowdown
 * counts (a device token's id, OTHERS, or a session's: login-throttle.repository.ts); resolves with its give-back.
 */
export type CountCodeCheck = (userId: string, device: string) => Promise<() => Promise<void>>

export type MfaStatus = { totp_enabled: boolean; enabled_at: string | null; recovery_codes_remaining: number }

export interface MfaService {
  status(userId: string): Promise<MfaStatus>
  isEnabled(userId: string): Promise<boolean>
  /** Starts (or starts again) an enrolment: a new secret, pending until a code of it confirms it. */
  startEnrolment(
    user: { id: string; username: string },
    context: EventContext,
  ): Promise<{ secret: string; otpauth_uri: string; qr_svg: string }>
  /** Confirms the pending enrolment with a code of its secret; the new recovery codes, shown this once. */
  confirmEnrolment(
    userId: string,
    sessionId: string,
    code: string,
    context: EventContext,
    count: CountCodeCheck,
  ): Promise<{ recovery_codes: string[] }>
  regenerateRecoveryCodes(userId: string, context: EventContext): Promise<{ recovery_codes: string[] }>
  /**
   * Checks a proof against the user's confirmed factor, and spends it: a TOTP code of a time step no code was
   * accepted for, or an unused recovery code (recorded). Undefined when it does not hold.
   */
  verify(userId: string, proof: FactorProof, context: EventContext): Promise<FactorUsed | undefined>
  /** Removes the user's factor and recovery codes (recorded); `mfa_not_enabled` when there is none. */
  remove(userId: string, context: EventContext): Promise<void>
  /** The challenge of a login whose password was right: its token, shown once. */
  issueChallenge(
    user: { id: string; tokenVersion: number },
    device: string,
  ): Promise<{ mfa_token: string; expires_in: number }>
  /**
   * The challenge a token opens, with one attempt counted against it; undefined for a token that is unknown,
   * forged, expired, or out of attempts.
   */
  openChallenge(token: string): Promise<MfaChallenge | undefined>
  /** Ends the challenge: true for the one caller that did (the login it completes is then theirs). */
  closeChallenge(challenge: MfaChallenge): Promise<boolean>
  purge(): Promise<number>
}

/** What a factor change and its events are written with, in one transaction. */
export type MfaStore = { mfa: MfaRepository; sessions: SessionRepository; events: EventWriter }

export type MfaServiceDeps = {
  mfa: MfaRepository
  transact: Transact<MfaStore>
  keyEncryption: KeyEncryption
  /** The key of recovery-code HMACs (a server secret). */
  recoveryCodeKey: Buffer
  clock: Clock
  /** TOTP_ISSUER: the name authenticator apps show. */
  issuer: string
  /** Told when a factor is enabled or removed: step-up answers depend on it. */
  authStates: AuthStateCache
}

const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex')

/** A recovery code as typed: any case, with or without its dashes or spaces; misread letters as Crockford reads them. */
export function normalizeRecoveryCode(typed: string): string {
  return typed.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1')
}

function newRecoveryCode(): string {
  // 256 is a multiple of 32: each byte's low five bits pick a character without bias.
  const chars = [...randomBytes(RECOVERY_CODE_LENGTH)].map((byte) => RECOVERY_ALPHABET[byte & 31])
  return `${chars.slice(0, 4).join('')}-${chars.slice(4, 8).join('')}-${chars.slice(8).join('')}`
}

export function createMfaService(deps: MfaServiceDeps): MfaService {
  const { mfa, transact, keyEncryption, recoveryCodeKey, clock, issuer, authStates } = deps
  const now = () => epochSeconds(clock)

  const codeHash = (userId: string, normalized: string) =>
    createHmac('sha256', recoveryCodeKey)
      .update(`tessera-recovery-code\0${userId}\0${normalized}`)
      .digest('hex')

  /** Ten new codes, and their hashes to store. */
  const newRecoveryCodes = (userId: string) => {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode)
    return { codes, hashes: codes.map((code) => codeHash(userId, normalizeRecoveryCode(code))) }
  }

  const seal = (secret: TotpSecret) => keyEncryption.seal({ kty: 'oct', k: secret.toString('base64url') })
  const open = async (stored: string): Promise<TotpSecret> => {
    const jwk = await keyEncryption.open(stored)
    if (typeof jwk.k !== 'string') throw new Error('A stored TOTP secret is not a sealed key')
    return Buffer.from(jwk.k, 'base64url')
  }

  const checkCode = async (userId: string, code: string): Promise<boolean> => {
    const factor = await mfa.findFactor(userId)
    if (!factor?.confirmedAt) return false
    const step = matchingStep(await open(factor.secret), code, clock)
    // Only a step later than the last one accepted: a code, replayed, is refused (RFC 6238 section 5.2).
    return step !== undefined && step > factor.lastUsedStep && (await mfa.acceptStep(userId, step))
  }

  const checkRecoveryCode = async (userId: string, typed: string, context: EventContext) => {
    const normalized = normalizeRecoveryCode(typed)
    if (normalized.length !== RECOVERY_CODE_LENGTH) return false
    return transact(async (store) => {
      if (!(await store.mfa.useRecoveryCode(userId, codeHash(userId, normalized), now()))) return false
      await store.events.record({
        type: 'mfa.recovery_code_used',
        context,
        userId,
        detail: { remaining: await store.mfa.unusedRecoveryCodes(userId) },
      })
      return true
    })
  }

  return {
    async status(userId) {
      const factor = await mfa.findFactor(userId)
      const enabled = factor?.confirmedAt !== undefined
      return {
        totp_enabled: enabled,
        enabled_at: factor?.confirmedAt === undefined ? null : isoTime(factor.confirmedAt),
        recovery_codes_remaining: enabled ? await mfa.unusedRecoveryCodes(userId) : 0,
      }
    },

    isEnabled: async (userId) => (await mfa.findFactor(userId))?.confirmedAt !== undefined,

    async startEnrolment(user, context) {
      const secret = newTotpSecret()
      const started = await transact(async (store) => {
        if (!(await store.mfa.savePending(user.id, await seal(secret), now()))) return false
        await store.events.record({ type: 'mfa.enrollment_started', context, userId: user.id })
        return true
      })
      if (!started) throw new AppError('mfa_already_enabled')
      const uri = otpauthUri(secret, issuer, user.username)
      return { secret: base32Of(secret), otpauth_uri: uri, qr_svg: await qrSvg(uri) }
    },

    async confirmEnrolment(userId, sessionId, code, context, count) {
      const factor = await mfa.findFactor(userId)
      if (factor?.confirmedAt !== undefined) throw new AppError('mfa_already_enabled')
      if (!factor || factor.createdAt + ENROLMENT_TTL_SECONDS <= now())
        throw new AppError('no_mfa_enrollment')
      const giveBack = await count(userId, sessionDevice(sessionId))
      const step = matchingStep(await open(factor.secret), code, clock)
      if (step === undefined)
        throw new AppError('invalid_code', 'The code is not right: check the clock of the device')
      await giveBack()
      const { codes, hashes } = newRecoveryCodes(userId)
      await transact(async (store) => {
        if (!(await store.mfa.confirm(userId, factor.createdAt, step, now(), hashes))) {
          throw new AppError('no_mfa_enrollment')
        }
        await store.events.record({
          type: 'mfa.enabled',
          context,
          userId,
          detail: { recoveryCodes: RECOVERY_CODE_COUNT },
        })
      })
      authStates.forgetUser(userId)
      return { recovery_codes: codes }
    },

    async regenerateRecoveryCodes(userId, context) {
      const { codes, hashes } = newRecoveryCodes(userId)
      await transact(async (store) => {
        // Two regenerations at once: the second replaces the first's codes, never adds to them.
        await store.mfa.lockFactor(userId)
        if ((await store.mfa.findFactor(userId))?.confirmedAt === undefined)
          throw new AppError('mfa_not_enabled')
        await store.mfa.replaceRecoveryCodes(userId, hashes, now())
        await store.events.record({
          type: 'mfa.recovery_codes_regenerated',
          context,
          userId,
          detail: { recoveryCodes: RECOVERY_CODE_COUNT },
        })
      })
      return { recovery_codes: codes }
    },

    async verify(userId, proof, context) {
      if (proof.code !== undefined) return (await checkCode(userId, proof.code)) ? 'totp' : undefined
      if (proof.recovery_code !== undefined) {
        return (await checkRecoveryCode(userId, proof.recovery_code, context)) ? 'recovery_code' : undefined
      }
      return undefined
    },

    async remove(userId, context) {
      await transact(async (store) => {
        await store.mfa.lockFactor(userId)
        if (!(await store.mfa.remove(userId))) throw new AppError('mfa_not_enabled')
        // Sessions signed in with it no longer say so: their refreshed tokens are password sign-ins.
        await store.sessions.forgetSecondFactor(userId)
        await store.events.record({ type: 'mfa.disabled', context, userId })
      })
      authStates.forgetUser(userId)
    },

    async issueChallenge(user, device) {
      const selector = randomToken(12)
      const verifier = randomToken(32)
      await mfa.createChallenge({
        selector,
        verifierHash: sha256Hex(verifier),
        userId: user.id,
        tokenVersion: user.tokenVersion,
        device,
        attempts: 0,
        expiresAt: now() + MFA_CHALLENGE_TTL_SECONDS,
      })
      return { mfa_token: `${selector}${verifier}`, expires_in: MFA_CHALLENGE_TTL_SECONDS }
    },

    async openChallenge(token) {
      if (!CHALLENGE_TOKEN.test(token)) return undefined
      const selector = token.slice(0, SELECTOR_LENGTH)
      const found = await mfa.findChallenge(selector)
      // Compared in constant time, against a random hash for an unknown selector: time tells nothing.
      const expected = Buffer.from(found?.verifierHash ?? sha256Hex(randomToken(32)), 'hex')
      const given = Buffer.from(sha256Hex(token.slice(SELECTOR_LENGTH)), 'hex')
      const matches = expected.length === given.length && timingSafeEqual(expected, given)
      if (!found || !matches) return undefined
      return (await mfa.claimAttempt(selector, MFA_CHALLENGE_ATTEMPTS, now())) ? found : undefined
    },

    closeChallenge: (challenge) => mfa.consumeChallenge(challenge.selector),

    purge: () => mfa.purge(now(), now() - ENROLMENT_TTL_SECONDS),
  }
}
