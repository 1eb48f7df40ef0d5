// Signing keys in the database, where every instance reads them. Private halves pass through KeyEncryption
// on their way in and out. At most one key is active (signs); retired keys verify until they are pruned.
import type { JsonWebKey } from 'node:crypto'
import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type { JwtAlgorithm } from './algorithms.ts'
import type { KeyEncryption } from './key-encryption.ts'

export type KeyState = 'active' | 'retired'

export type StoredKey = {
  kid: string
  algorithm: JwtAlgorithm
  state: KeyState
  createdAt: number
  retiredAt: number | null
  privateJwk: JsonWebKey
  publicJwk: JsonWebKey | null
}

export interface KeyRepository {
  /** Every key that may still verify a token: active ones, and those retired after `retiredSince`. */
  listUsable(retiredSince: number): Promise<StoredKey[]>
  listAll(): Promise<Omit<StoredKey, 'privateJwk'>[]>
  has(kid: string): Promise<boolean>
  findActive(): Promise<{ kid: string; algorithm: JwtAlgorithm } | undefined>
  /** Retires the active key, if any (it still verifies during its grace period). */
  retireActive(now: number): Promise<void>
  /**
   * Makes the key the active one, retiring whichever was active, in one transaction. With `replace: false`
   * it retires nothing: when a key is already active, the insert fails as a unique violation. `also` runs in
   * the same transaction, after the insert (the caller records the rotation there).
   */
  activate(
    key: Omit<StoredKey, 'state' | 'retiredAt'>,
    now: number,
    options?: { replace?: boolean; also?: (trx: Db) => Promise<unknown> },
  ): Promise<void>
  /**
   * Deletes keys retired at or before `retiredBefore`: no unexpired token can need them. `also` runs in the same
   * transaction with the kids deleted.
   */
  prune(retiredBefore: number, also?: (trx: Db, kids: string[]) => Promise<unknown>): Promise<string[]>
}

export function createKeyRepository(db: Db, encryption: KeyEncryption): KeyRepository {
  const columns = ['kid', 'algorithm', 'state', 'created_at', 'retired_at', 'public_jwk'] as const
  type Row = {
    kid: string
    algorithm: string
    state: string
    created_at: number
    retired_at: number | null
    public_jwk: string | null
  }
  const toKey = (row: Row) => ({
    kid: row.kid,
    algorithm: row.algorithm as JwtAlgorithm,
    state: row.state as KeyState,
    createdAt: Number(row.created_at),
    retiredAt: row.retired_at === null ? null : Number(row.retired_at),
    publicJwk: row.public_jwk === null ? null : (JSON.parse(row.public_jwk) as JsonWebKey),
  })

  return {
    async listUsable(retiredSince) {
      const rows = await db
        .selectFrom('signing_keys')
        .select([...columns, 'private_jwk'])
        .where((eb) => eb.or([eb('state', '=', 'active'), eb('retired_at', '>', retiredSince)]))
        .orderBy('created_at', 'desc')
        .execute()
      return Promise.all(
        rows.map(async (row) => ({ ...toKey(row), privateJwk: await encryption.open(row.private_jwk) })),
      )
    },

    async listAll() {
      // The active key first: two keys made in the same second have equal created_at.
      const rows = await db
        .selectFrom('signing_keys')
        .select(columns)
        .orderBy(sql`case when state = 'active' then 0 else 1 end`)
        .orderBy('created_at', 'desc')
        .execute()
      return rows.map(toKey)
    },

    async has(kid) {
      return (
        (await db.selectFrom('signing_keys').select('kid').where('kid', '=', kid).executeTakeFirst()) !==
        undefined
      )
    },

    async findActive() {
      const row = await db
        .selectFrom('signing_keys')
        .select(['kid', 'algorithm'])
        .where('state', '=', 'active')
        .executeTakeFirst()
      return row && { kid: row.kid, algorithm: row.algorithm as JwtAlgorithm }
    },

    async retireActive(now) {
      await db
        .updateTable('signing_keys')
        .set({ state: 'retired', retired_at: now })
        .where('state', '=', 'active')
        .execute()
    },

    async activate(key, now, { replace = true, also } = {}) {
      const privateJwk = await encryption.seal(key.privateJwk)
      await db.transaction().execute(async (trx) => {
        if (replace) {
          await trx
            .updateTable('signing_keys')
            .set({ state: 'retired', retired_at: now })
            .where('state', '=', 'active')
            .execute()
        }
        await trx
          .insertInto('signing_keys')
          .values({
            kid: key.kid,
            algorithm: key.algorithm,
            private_jwk: privateJwk,
            public_jwk: key.publicJwk === null ? null : JSON.stringify(key.publicJwk),
            state: 'active',
            created_at: key.createdAt,
            retired_at: null,
          })
          .execute()
        await also?.(trx)
      })
    },

    async prune(retiredBefore, also) {
      return db.transaction().execute(async (trx) => {
        const rows = await trx
          .deleteFrom('signing_keys')
          .where('state', '=', 'retired')
          .where('retired_at', '<=', retiredBefore)
          .returning('kid')
          .execute()
        const kids = rows.map((row) => row.kid)
        if (kids.length > 0) await also?.(trx, kids)
        return kids
      })
    },
  }
}
