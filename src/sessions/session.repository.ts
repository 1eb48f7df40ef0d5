// Reads and writes sessions and their refresh tokens. The rotation is one compare-and-set: a token is spent
// only by the UPDATE that finds it unspent, so of any number of concurrent refreshes exactly one rotates.
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
}

/** `tokenVersion`: the user's token version that the password check saw. */
export type NewSession = Pick<
  Session,
  'id' | 'userId' | 'createdAt' | 'expiresAt' | 'userAgent' | 'ip' | 'tokenVersion'
>

export type StoredRefreshToken = { sessionId: string; spentAt: number | null; session: Session }

export interface SessionRepository {
  /**
   * Starts a session, only if the user still exists, is enabled and is at `tokenVersion`: a login whose
   * password check raced a password change, a disable or a deletion gets undefined instead.
   */
  create(session: NewSession, tokenHash: string): Promise<Session | undefined>
  findByToken(tokenHash: string): Promise<StoredRefreshToken | undefined>
  findTokenState(tokenHash: string): Promise<{ sessionId: string; spentAt: number | null } | undefined>
  /**
   * Spends `tokenHash` and stores its successor, if and only if it was unspent and its session not revoked;
   * false otherwise.
   */
  rotate(sessionId: string, tokenHash: string, nextTokenHash: string, now: number): Promise<boolean>
  findById(id: string): Promise<Session | undefined>
  listActive(userId: string, now: number, idleSince: number): Promise<Session[]>
  revoke(id: string, reason: string, now: number): Promise<boolean>
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
] as const

export function createSessionRepository(db: Db): SessionRepository {
  return {
    async create(session, tokenHash) {
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
      }
      const created = await db.transaction().execute(async (trx) => {
        // INSERT ... SELECT from the user's row: one statement that checks and inserts.
        const inserted = await trx
          .insertInto('sessions')
          .columns(Object.keys(row) as (keyof Row)[])
          .expression(
            trx
              .selectFrom('users')
              .select((eb) => Object.entries(row).map(([name, value]) => eb.val(value).as(name)))
              .where('id', '=', session.userId)
              .where('token_version', '=', session.tokenVersion)
              .where('disabled', '=', 0),
          )
          .executeTakeFirst()
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false
        await trx
          .insertInto('refresh_tokens')
          .values({
            token_hash: tokenHash,
            session_id: session.id,
            created_at: session.createdAt,
            spent_at: null,
          })
          .execute()
        return true
      })
      return created ? toSession(row) : undefined
    },

    async findByToken(tokenHash) {
      const row = await db
        .selectFrom('refresh_tokens')
        .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
        .select([...SESSION_COLUMNS, 'refresh_tokens.spent_at'])
        .where('refresh_tokens.token_hash', '=', tokenHash)
        .executeTakeFirst()
      if (!row) return undefined
      const { spent_at, ...session } = row
      return {
        sessionId: row.id,
        spentAt: spent_at === null ? null : Number(spent_at),
        session: toSession(session),
      }
    },

    async findTokenState(tokenHash) {
      const row = await db
        .selectFrom('refresh_tokens')
        .select(['session_id', 'spent_at'])
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst()
      return (
        row && { sessionId: row.session_id, spentAt: row.spent_at === null ? null : Number(row.spent_at) }
      )
    },

    async rotate(sessionId, tokenHash, nextTokenHash, now) {
      return db.transaction().execute(async (trx) => {
        const spent = await trx
          .updateTable('refresh_tokens')
          .set({ spent_at: now })
          .where('token_hash', '=', tokenHash)
          .where('spent_at', 'is', null)
          .where((eb) =>
            eb.exists(
              eb
                .selectFrom('sessions')
                .select('id')
                .where('id', '=', sessionId)
                .where('revoked_at', 'is', null),
            ),
          )
          .executeTakeFirst()
        if (spent.numUpdatedRows === 0n) return false
        await trx
          .insertInto('refresh_tokens')
          .values({ token_hash: nextTokenHash, session_id: sessionId, created_at: now, spent_at: null })
          .execute()
        await trx.updateTable('sessions').set({ last_used_at: now }).where('id', '=', sessionId).execute()
        return true
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
      const result = await db
        .updateTable('sessions')
        .set({ revoked_at: now, revoked_reason: reason })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
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
