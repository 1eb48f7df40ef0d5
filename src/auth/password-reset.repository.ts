// Password-reset tokens (issue 14): at most one live token per user, so that issuing one ends the one before.
// A token is `<selector><verifier>`: the selector finds the row, the verifier is stored only as its SHA-256
// and compared in constant time (password-reset.service.ts). A database leak gives no working token.
import { PostgresAdapter, type Selectable } from 'kysely'
import type { Db, PasswordResetsTable } from '../db/database.ts'

export type PasswordReset = {
  userId: string
  selector: string
  /** SHA-256 of the verifier, hex. */
  verifierHash: string
  /** The user's token_version when issued: a password changed since ends the token. */
  tokenVersion: number
  issuedVia: 'admin' | 'cli' | 'self_service'
  createdAt: number
  expiresAt: number
}

export interface PasswordResetRepository {
  /** Stores the user's token, replacing any earlier one. */
  replace(reset: PasswordReset): Promise<void>
  findBySelector(selector: string): Promise<PasswordReset | undefined>
  /** The user's token, live or not, if one is stored. */
  findForUser(userId: string): Promise<PasswordReset | undefined>
  /**
   * Within a transaction, makes the issuing of the user's token one step: on PostgreSQL, locks the user's row
   * until it ends (there may be no token row yet to lock); SQLite's transactions already run one at a time.
   */
  lockTokenOf(userId: string): Promise<void>
  /** Deletes the token if it is still there: true for the one caller that spends it. */
  spend(selector: string): Promise<boolean>
  /** Deletes the tokens that expired before `now`; resolves to how many. */
  purgeExpired(now: number): Promise<number>
}

const toReset = (row: Selectable<PasswordResetsTable>): PasswordReset => ({
  userId: row.user_id,
  selector: row.selector,
  verifierHash: row.verifier_hash,
  tokenVersion: Number(row.token_version),
  issuedVia: row.issued_via,
  createdAt: Number(row.created_at),
  expiresAt: Number(row.expires_at),
})

export function createPasswordResetRepository(db: Db): PasswordResetRepository {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter
  return {
    async lockTokenOf(userId) {
      if (postgres) {
        await db.selectFrom('users').select('id').where('id', '=', userId).forNoKeyUpdate().execute()
      }
    },

    async replace(reset) {
      const row = {
        user_id: reset.userId,
        selector: reset.selector,
        verifier_hash: reset.verifierHash,
        token_version: reset.tokenVersion,
        issued_via: reset.issuedVia,
        created_at: reset.createdAt,
        expires_at: reset.expiresAt,
      }
      const { user_id: _key, ...replaced } = row
      await db
        .insertInto('password_resets')
        .values(row)
        .onConflict((oc) => oc.column('user_id').doUpdateSet(replaced))
        .execute()
    },

    async findBySelector(selector) {
      const row = await db
        .selectFrom('password_resets')
        .selectAll()
        .where('selector', '=', selector)
        .executeTakeFirst()
      return row && toReset(row)
    },

    async findForUser(userId) {
      const row = await db
        .selectFrom('password_resets')
        .selectAll()
        .where('user_id', '=', userId)
        .executeTakeFirst()
      return row && toReset(row)
    },

    async spend(selector) {
      const result = await db
        .deleteFrom('password_resets')
        .where('selector', '=', selector)
        .executeTakeFirst()
      return result.numDeletedRows > 0n
    },

    async purgeExpired(now) {
      const result = await db.deleteFrom('password_resets').where('expires_at', '<', now).executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}
