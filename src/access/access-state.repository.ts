// The one read behind every authenticated request: a session joined with its user, which says whether the
// session's access tokens still hold (see auth-state.ts, which keeps the result for a moment).
import type { Db } from '../db/database.ts'
import type { LoadAccessState } from './auth-state.ts'

/** The session joined with its user: what the access-token check needs, in one read. */
export function createAccessStateLoader(db: Db): LoadAccessState {
  return async (id) => {
    const row = await db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .leftJoin('totp_factors', 'totp_factors.user_id', 'sessions.user_id')
      .select([
        'totp_factors.confirmed_at as totp_confirmed_at',
        'sessions.user_id',
        'sessions.revoked_at',
        'sessions.expires_at',
        'sessions.last_used_at',
        'sessions.token_version as session_token_version',
        'users.username',
        'users.first_name',
        'users.last_name',
        'users.created_at',
        'users.updated_at',
        'users.external_id',
        'users.roles',
        'users.disabled',
        'users.token_version',
      ])
      .where('sessions.id', '=', id)
      .executeTakeFirst()
    return (
      row && {
        userId: row.user_id,
        username: row.username,
        firstName: row.first_name,
        lastName: row.last_name,
        createdAt: Number(row.created_at),
        updatedAt: Number(row.updated_at),
        externalId: row.external_id,
        roles: JSON.parse(row.roles) as string[],
        disabled: Number(row.disabled) === 1,
        tokenVersion: Number(row.token_version),
        sessionRevoked:
          row.revoked_at !== null || Number(row.session_token_version) !== Number(row.token_version),
        sessionExpiresAt: Number(row.expires_at),
        sessionLastUsedAt: Number(row.last_used_at),
        mfaEnabledAt: row.totp_confirmed_at === null ? null : Number(row.totp_confirmed_at),
      }
    )
  }
}
