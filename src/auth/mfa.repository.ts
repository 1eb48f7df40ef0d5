// Reads and writes a user's second factor (issue 15): the TOTP factor, its recovery codes, and the challenges
// of logins waiting for a code. Every acceptance is one conditional write, so that of parallel requests with one
// code, one recovery code or one challenge exactly one succeeds.
import { PostgresAdapter } from 'kysely'
import type { Db } from '../db/database.ts'

export type TotpFactor = {
  /** The secret, sealed (key-encryption.ts). */
  secret: string
  createdAt: number
  /** Undefined while the enrolment waits for its first code. */
  confirmedAt: number | undefined
  lastUsedStep: number
}

export type MfaChallenge = {
  selector: string
  verifierHash: string
  userId: string
  tokenVersion: number
  device: string
  attempts: number
  expiresAt: number
}

export interface MfaRepository {
  findFactor(userId: string): Promise<TotpFactor | undefined>
  /**
   * Locks the user's factor row until the transaction ends (PostgreSQL; SQLite's transactions take the write
   * lock at once): changes of the factor and its codes then run one at a time. Call it in a transaction.
   */
  lockFactor(userId: string): Promise<void>
  /** Replaces a pending enrolment with this one; false, changing nothing, when a confirmed factor exists. */
  savePending(userId: string, secret: string, now: number): Promise<boolean>
  /**
   * Confirms the pending enrolment made at `createdAt` with the code of `step`, and stores the recovery codes;
   * false when it is no longer pending. Call it in a transaction (a unit of work's store).
   */
  confirm(
    userId: string,
    createdAt: number,
    step: number,
    now: number,
    codeHashes: string[],
  ): Promise<boolean>
  /** Accepts a code of `step` for the confirmed factor, if no code of that step or a later one was. */
  acceptStep(userId: string, step: number): Promise<boolean>
  /** Deletes the factor (pending or confirmed), its recovery codes and challenges; whether a confirmed one went. */
  remove(userId: string): Promise<boolean>
  replaceRecoveryCodes(userId: string, codeHashes: string[], now: number): Promise<void>
  /** Spends an unused recovery code of a confirmed factor; false when it is not one, or was used. */
  useRecoveryCode(userId: string, codeHash: string, now: number): Promise<boolean>
  unusedRecoveryCodes(userId: string): Promise<number>
  createChallenge(challenge: MfaChallenge): Promise<void>
  findChallenge(selector: string): Promise<MfaChallenge | undefined>
  /** Counts an attempt at the challenge, if it is unexpired and has attempts left; false otherwise. */
  claimAttempt(selector: string, maxAttempts: number, now: number): Promise<boolean>
  /** Deletes the challenge: true for the one caller that did. */
  consumeChallenge(selector: string): Promise<boolean>
  /** Deletes expired challenges, and enrolments left pending since before `pendingBefore`; how many. */
  purge(now: number, pendingBefore: number): Promise<number>
}

export function createMfaRepository(db: Db): MfaRepository {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter
  const replaceRecoveryCodes = async (userId: string, codeHashes: string[], now: number) => {
    await db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute()
    await db
      .insertInto('recovery_codes')
      .values(codeHashes.map((code_hash) => ({ user_id: userId, code_hash, created_at: now, used_at: null })))
      .execute()
  }

  return {
    async findFactor(userId) {
      const row = await db
        .selectFrom('totp_factors')
        .select(['secret', 'created_at', 'confirmed_at', 'last_used_step'])
        .where('user_id', '=', userId)
        .executeTakeFirst()
      return (
        row && {
          secret: row.secret,
          createdAt: Number(row.created_at),
          confirmedAt: row.confirmed_at === null ? undefined : Number(row.confirmed_at),
          lastUsedStep: Number(row.last_used_step),
        }
      )
    },

    async lockFactor(userId) {
      if (postgres) {
        await db
          .selectFrom('totp_factors')
          .select('user_id')
          .where('user_id', '=', userId)
          .forUpdate()
          .execute()
      }
    },

    async savePending(userId, secret, now) {
      // One statement: an insert, or the replacement of a pending one; never of a confirmed one.
      const saved = await db
        .insertInto('totp_factors')
        .values({ user_id: userId, secret, created_at: now, confirmed_at: null, last_used_step: 0 })
        .onConflict((oc) =>
          oc
            .column('user_id')
            .doUpdateSet({ secret, created_at: now, last_used_step: 0 })
            .where('totp_factors.confirmed_at', 'is', null),
        )
        .executeTakeFirst()
      return Number(saved.numInsertedOrUpdatedRows ?? 0) > 0
    },

    async confirm(userId, createdAt, step, now, codeHashes) {
      const result = await db
        .updateTable('totp_factors')
        .set({ confirmed_at: now, last_used_step: step })
        .where('user_id', '=', userId)
        .where('created_at', '=', createdAt)
        .where('confirmed_at', 'is', null)
        .executeTakeFirst()
      if (result.numUpdatedRows === 0n) return false
      await replaceRecoveryCodes(userId, codeHashes, now)
      return true
    },

    async acceptStep(userId, step) {
      const result = await db
        .updateTable('totp_factors')
        .set({ last_used_step: step })
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is not', null)
        .where('last_used_step', '<', step)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    async remove(userId) {
      const removed = await db
        .deleteFrom('totp_factors')
        .where('user_id', '=', userId)
        .returning('confirmed_at')
        .execute()
      await db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute()
      await db.deleteFrom('mfa_challenges').where('user_id', '=', userId).execute()
      return removed.some((row) => row.confirmed_at !== null)
    },

    replaceRecoveryCodes,

    async useRecoveryCode(userId, codeHash, now) {
      const result = await db
        .updateTable('recovery_codes')
        .set({ used_at: now })
        .where('user_id', '=', userId)
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        // Codes outlive nothing: of a factor removed meanwhile, none works.
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('totp_factors')
              .select('totp_factors.user_id')
              .where('totp_factors.user_id', '=', userId)
              .where('totp_factors.confirmed_at', 'is not', null),
          ),
        )
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    async unusedRecoveryCodes(userId) {
      const row = await db
        .selectFrom('recovery_codes')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
        .where('user_id', '=', userId)
        .where('used_at', 'is', null)
        .executeTakeFirstOrThrow()
      return Number(row.count)
    },

    async createChallenge(challenge) {
      await db
        .insertInto('mfa_challenges')
        .values({
          selector: challenge.selector,
          verifier_hash: challenge.verifierHash,
          user_id: challenge.userId,
          token_version: challenge.tokenVersion,
          device: challenge.device,
          attempts: challenge.attempts,
          expires_at: challenge.expiresAt,
        })
        .execute()
    },

    async findChallenge(selector) {
      const row = await db
        .selectFrom('mfa_challenges')
        .selectAll()
        .where('selector', '=', selector)
        .executeTakeFirst()
      return (
        row && {
          selector: row.selector,
          verifierHash: row.verifier_hash,
          userId: row.user_id,
          tokenVersion: Number(row.token_version),
          device: row.device,
          attempts: Number(row.attempts),
          expiresAt: Number(row.expires_at),
        }
      )
    },

    async claimAttempt(selector, maxAttempts, now) {
      const result = await db
        .updateTable('mfa_challenges')
        .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
        .where('selector', '=', selector)
        .where('attempts', '<', maxAttempts)
        .where('expires_at', '>', now)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    async consumeChallenge(selector) {
      const result = await db.deleteFrom('mfa_challenges').where('selector', '=', selector).executeTakeFirst()
      return result.numDeletedRows > 0n
    },

    async purge(now, pendingBefore) {
      const challenges = await db
        .deleteFrom('mfa_challenges')
        .where('expires_at', '<=', now)
        .executeTakeFirst()
      const pending = await db
        .deleteFrom('totp_factors')
        .where('confirmed_at', 'is', null)
        .where('created_at', '<', pendingBefore)
        .executeTakeFirst()
      return Number(challenges.numDeletedRows) + Number(pending.numDeletedRows)
    },
  }
}
