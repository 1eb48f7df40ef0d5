// The second factor where a user proves who they are (issue 15): the second step of a login, reauthenticating
// in a session, and removing one's own factor. A wrong code counts like a wrong password in the slowdown, and
// apart from passwords in the rate limits; codes and passwords checked in a session count for that session.
import { sessionDevice } from '../access/session-device.ts'
import { usernameKey } from '../access/username.ts'
import type { Client, EventContext } from '../events/event.ts'
import { AppError } from '../http/problem.ts'
import type { ClientInfo, SessionGrant, SessionService } from '../sessions/session.service.ts'
import type { User, UserRepository } from '../users/user.repository.ts'
import type { DeviceToken, DeviceTokens } from './device-tokens.ts'
import type { Lockout } from './lockout.ts'
import { invalid, type LoginChecks, requester } from './login-checks.ts'
import { OTHERS } from './login-throttle.repository.ts'
import type { CountCodeCheck, FactorProof, MfaService } from './mfa.service.ts'
import type { PasswordHasher } from './password-hasher.ts'

/** The signed-in user, proving who they are again: their password, and their second factor if they have one. */
export type Reauthentication = { password: string } & FactorProof

export interface SecondFactorFlows {
  /**
   * The second step of a login: the challenge's token and a code (or recovery code) of the user's factor. A
   * wrong code and a token that is wrong, used or expired are answered alike (`invalid_mfa_code`).
   */
  completeLogin(
    mfaToken: string,
    proof: FactorProof,
    client: ClientInfo,
    count: CountCodeCheck,
  ): Promise<{ grant: SessionGrant; device: DeviceToken }>
  /**
   * A fresh access token of the session, with a new `auth_time`, for the user's password (and code, if they
   * have a factor): what a step-up challenge asks for.
   */
  reauthenticate(
    auth: { userId: string; sessionId: string },
    proof: Reauthentication,
    context: EventContext,
    count: CountCodeCheck,
  ): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }>
  /** Removes the user's own second factor, for their password and a code or recovery code. */
  removeOwnFactor(
    auth: { userId: string; sessionId: string },
    proof: Reauthentication,
    context: EventContext,
    count: CountCodeCheck,
  ): Promise<void>
}

export type SecondFactorFlowsDeps = {
  users: Pick<UserRepository, 'findById' | 'findPasswordHash'>
  hasher: PasswordHasher
  mfa: MfaService
  lockout: Lockout
  deviceTokens: DeviceTokens
  sessions: SessionService
  checks: LoginChecks
}

const invalidMfaCode = () => new AppError('invalid_mfa_code')

export function createSecondFactorFlows(deps: SecondFactorFlowsDeps): SecondFactorFlows {
  const { users, hasher, mfa, lockout, deviceTokens, sessions, checks } = deps

  /**
   * Checks the signed-in user's password, and their second factor when they have one: the authentication
   * methods proved (`amr`), or `reauthentication_failed` for either wrong, alike (checks.underSessionCount).
   */
  const proveAgain = async (
    { userId, sessionId }: { userId: string; sessionId: string },
    proof: Reauthentication,
    context: EventContext,
    count: CountCodeCheck,
  ) => {
    const enrolled = await mfa.isEnabled(userId)
    if (enrolled && proof.code === undefined && proof.recovery_code === undefined) {
      throw invalid([
        { field: '/body/code', message: 'is required: a second factor is enabled (or send recovery_code)' },
      ])
    }
    const user = await users.findById(userId)
    const currentHash = await users.findPasswordHash(userId)
    if (!user || currentHash === undefined) throw new AppError('user_not_found')
    const by = requester(user.username, context.ip ?? undefined)
    const amr = await checks.underSessionCount(
      user,
      sessionId,
      async (countFailure) => {
        if (!(await hasher.verify(currentHash, proof.password, by))) {
          await countFailure()
          throw new AppError('reauthentication_failed')
        }
        if (!enrolled) return ['pwd']
        const giveBack = await count(userId, sessionDevice(sessionId))
        if (!(await mfa.verify(userId, proof, context))) {
          await countFailure()
          throw new AppError('reauthentication_failed')
        }
        await giveBack()
        return ['pwd', 'otp']
      },
      context,
    )
    return { user, amr }
  }

  /**
   * Counts a code check of a login's second step. A client without the account's device token that is past the
   * limit is answered as a wrong code: a 429 would tell it that its MFA token is a live one.
   */
  const countLoginCodeCheck = async (count: CountCodeCheck, user: User, device: string, client: Client) => {
    try {
      return await count(user.id, device)
    } catch (error) {
      if (device !== OTHERS || !(error instanceof AppError) || error.code !== 'rate_limited') throw error
      await checks.recordThrottled(user.username, client, user)
      throw invalidMfaCode()
    }
  }

  return {
    async completeLogin(mfaToken, proof, client, count) {
      const challenge = await mfa.openChallenge(mfaToken)
      if (!challenge) throw invalidMfaCode()
      const user = await users.findById(challenge.userId)
      // The password changed, or the user was disabled, since the password step.
      if (!user || user.disabled || user.tokenVersion !== challenge.tokenVersion) {
        await mfa.closeChallenge(challenge)
        throw invalidMfaCode()
      }
      const account = usernameKey(user.username)
      const { device } = challenge
      const entry = await lockout.enter(account, device)
      try {
        if (entry.refusedUntil > 0) {
          await checks.recordFailedLogin(user.username, user, 'slowed_down', client)
          throw checks.slowedDown(entry.refusedUntil, device, invalidMfaCode)
        }
        const giveBack = await countLoginCodeCheck(count, user, device, client)
        const context = { actor: { kind: 'anonymous' as const }, ...client }
        if (!(await mfa.verify(user.id, proof, context))) {
          await checks.recordFailedLogin(user.username, user, 'wrong_code', client)
          await checks.countFailure(account, device, user, client)
          throw invalidMfaCode()
        }
        await giveBack()
        // Of parallel requests with right codes (two recovery codes, say), one completes the login.
        if (!(await mfa.closeChallenge(challenge))) throw invalidMfaCode()
        await lockout.recordSuccess(account, device)
        const grant = await sessions.start(user, client, ['pwd', 'otp'])
        return { grant, device: deviceTokens.issue(account, device === OTHERS ? undefined : device, true) }
      } finally {
        entry.leave()
      }
    },

    async reauthenticate(auth, proof, context, count) {
      const { user, amr } = await proveAgain(auth, proof, context, count)
      return sessions.reauthenticate(user, auth.sessionId, amr, context)
    },

    async removeOwnFactor(auth, proof, context, count) {
      if (!(await mfa.isEnabled(auth.userId))) throw new AppError('mfa_not_enabled')
      await proveAgain(auth, proof, context, count)
      await mfa.remove(auth.userId, context)
    },
  }
}
