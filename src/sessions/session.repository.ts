// Reads and writes sessions. A session's refresh state is one counter in its row (decision 0010): rotation is
// one compare-and-set UPDATE of that counter, so of any number of concurrent refreshes exactly one rotates,
// and it is the refresh's only write. Sessions started before the counter keep their refresh_tokens rows
// (decision 0005) until their next refresh converts them.
import type { Selectable } from 'kysely'
import type { Db, SessionsTable } from '../db/database.ts'

export type Session = {
  id: string
  userId: string
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  userAgent: string | null
  ip: string | null
  revokedAt: number | null
  revokedReason: string | null
  tokenVersion: number
  /** The generation of the live refresh token; null for a session still on a legacy token. */
  refreshGeneration: number | null
  /** When the previous generation was spent; null before the first rotation. */
  refreshedAt: number | null
  /** How, and when, the user last proved who they are in this session: the tokens' `amr` and `auth_time`. */
  authentication: Authentication
}

/** How a user signed in (RFC 8176 `amr` values: `pwd`, `otp`), and when (epoch seconds). */
export type Authentication = { amr: string[]; authTime: number }

/** `tokenVersion`: the user's token version that the password check saw. */
export type NewSession = Pick<
  Session,
  'id' | 'userId' | 'createdAt' | 'expiresAt' | 'userAgent' | 'ip' | 'tokenVersion' | 'authentication'
>

/** A legacy refresh token (decision 0005), by the hash stored for it. */
export type LegacyRefreshToken = { spentAt: number | null; session: Session }

export interface SessionRepository {
  /**
   * Starts a session, only if the user still exists, is enabled and is at `tokenVersion`: a login whose
   * password check raced a password change, a disable or a deletion gets undefined instead.
   */
  create(session: NewSession): Promise<Session | undefined>
  /**
   * Spends generation `generation` and makes the next one live, if and only if `generation` is the live one
   * and the session is not revoked; false otherwise. One UPDATE.
   */
  rotate(sessionId: string, generation: number, now: number): Promise<boolean>
  findById(id: string): Promise<Session | undefined>
  /** Records a new proof of who the user is (reauthentication), if the session is not revoked. */
  reauthenticate(id: string, authentication: Authentication): Promise<boolean>
  /** The user's second factor is gone: their sessions say a password sign-in from now on. */
  forgetSecondFactor(userId: string): Promise<void>
  findLegacyToken(tokenHash: string): Promise<LegacyRefreshToken | undefined>
  /**
   * Spends a session's live legacy token and makes generation 0 of the new tokens live, if and only if that
   * token was unspent and the session is not revoked; false otherwise.
   */
  convertLegacy(sessionId: string, tokenHash: string, now: number): Promise<boolean>
  listActive(userId: string, now: number, idleSince: number): Promise<Session[]>
  /** Revokes the session if it is not already; returns whose it was, or undefined when nothing changed. */
  revoke(id: string, reason: string, now: number): Promise<{ userId: string } | undefined>
  /** Revokes every active session of the user; returns how many. */
  revokeAllForUser(userId: string, reason: string, now: number): Promise<number>
  /** Deletes sessions that expired or were revoked before `before`; returns how many. */
  purge(before: number, idleSince: number): Promise<number>
}

type Row = Selectable<SessionsTable>

function toSession(row: Row): Session {
  return {
    id: row.id,
    userId: row.user_id,
    createdAt: Number(row.created_at),
    lastUsedAt: Number(row.last_used_at),
    expiresAt: Number(row.expires_at),
    userAgent: row.user_agent,
    ip: row.ip,
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    revokedReason: row.revoked_reason,
    tokenVersion: Number(row.token_version),
    refreshGeneration: row.refresh_generation === null ? null : Number(row.refresh_generation),
    refreshedAt: row.refreshed_at === null ? null : Number(row.refreshed_at),
    // Sessions started before migration 0008 signed in with a password, when they started.
    authentication: {
      amr: row.amr === null ? ['pwd'] : row.amr.split(' '),
      authTime: Number(row.auth_time ?? row.created_at),
    },
  }
}

const SESSION_COLUMNS = [
  'sessions.id',
  'sessions.user_id',
  'sessions.created_at',
  'sessions.last_used_at',
  'sessions.expires_at',
  'sessions.user_agent',
  'sessions.ip',
  'sessions.revoked_at',
  'sessions.revoked_reason',
  'sessions.token_version',
  'sessions.refresh_generation',
  'sessions.refreshed_at',
  'sessions.auth_time',
  'sessions.amr',
] as const

export function createSessionRepository(db: Db): SessionRepository {
  return {
    async create(session) {
      const row: Row = {
        id: session.id,
        user_id: session.userId,
        created_at: session.createdAt,
        last_used_at: session.createdAt,
        expires_at: session.expiresAt,
        user_agent: session.userAgent,
        ip: session.ip,
        revoked_at: null,
        revoked_reason: null,
        token_version: session.tokenVersion,
        refresh_generation: 0,
        refreshed_at: null,
        auth_time: session.authentication.authTime,
        amr: session.authentication.amr.join(' '),
      }
      // INSERT ... SELECT from the user's row: one statement that checks and inserts.
      const inserted = await db
        .insertInto('sessions')
        .columns(Object.keys(row) as (keyof Row)[])
        .expression(
          db
            .selectFrom('users')
            .select((eb) => Object.entries(row).map(([name, value]) => eb.val(value).as(name)))
            .where('id', '=', session.userId)
            .where('token_version', '=', session.tokenVersion)
            .where('disabled', '=', 0),
        )
        .executeTakeFirst()
      const created = Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0
      return created ? toSession(row) : undefined
    },

    async rotate(sessionId, generation, now) {
      const result = await db
        .updateTable('sessions')
        .set({ refresh_generation: generation + 1, refreshed_at: now, last_used_at: now })
        .where('id', '=', sessionId)
        .where('refresh_generation', '=', generation)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    async reauthenticate(id, { amr, authTime }) {
      const result = await db
        .updateTable('sessions')
        .set({ auth_time: authTime, amr: amr.join(' ') })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    async forgetSecondFactor(userId) {
      await db.updateTable('sessions').set({ amr: 'pwd' }).where('user_id', '=', userId).execute()
    },

    async findLegacyToken(tokenHash) {
      const row = await db
        .selectFrom('refresh_tokens')
        .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
        .select([...SESSION_COLUMNS, 'refresh_tokens.spent_at'])
        .where('refresh_tokens.token_hash', '=', tokenHash)
        .executeTakeFirst()
      if (!row) return undefined
      const { spent_at, ...session } = row
      return { spentAt: spent_at === null ? null : Number(spent_at), session: toSession(session) }
    },

    async convertLegacy(sessionId, tokenHash, now) {
      return db.transaction().execute(async (trx) => {
        const spent = await trx
          .updateTable('refresh_tokens')
          .set({ spent_at: now })
          .where('token_hash', '=', tokenHash)
          .where('session_id', '=', sessionId)
          .where('spent_at', 'is', null)
          .executeTakeFirst()
        if (spent.numUpdatedRows === 0n) return false
        const converted = await trx
          .updateTable('sessions')
          .set({ refresh_generation: 0, refreshed_at: now, last_used_at: now })
          .where('id', '=', sessionId)
          .where('refresh_generation', 'is', null)
          .where('revoked_at', 'is', null)
          .executeTakeFirst()
        // Revoked meanwhile: the token stays spent (as revocation would leave it useless anyway).
        return converted.numUpdatedRows > 0n
      })
    },

    async findById(id) {
      const row = await db
        .selectFrom('sessions')
        .select(SESSION_COLUMNS)
        .where('id', '=', id)
        .executeTakeFirst()
      return row && toSession(row)
    },

    async listActive(userId, now, idleSince) {
      const rows = await db
        .selectFrom('sessions')
        .select(SESSION_COLUMNS)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .where('last_used_at', '>', idleSince)
        .orderBy('last_used_at', 'desc')
        .execute()
      return rows.map(toSession)
    },

    async revoke(id, reason, now) {
      const row = await db
        .updateTable('sessions')
        .set({ revoked_at: now, revoked_reason: reason })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .returning('user_id')
        .executeTakeFirst()
      return row && { userId: row.user_id }
    },

    async revokeAllForUser(userId, reason, now) {
      const result = await db
        .updateTable('sessions')
        .set({ revoked_at: now, revoked_reason: reason })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      return Number(result.numUpdatedRows)
    },

    async purge(before, idleSince) {
      const result = await db
        .deleteFrom('sessions')
        .where((eb) =>
          eb.or([
            eb('expires_at', '<=', before),
            eb('last_used_at', '<=', idleSince),
            eb('revoked_at', '<=', before),
          ]),
        )
        .executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}
