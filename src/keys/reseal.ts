// Re-sealing after a rotation of KEY_ENCRYPTION_SECRET (`tessera keys reseal`): every value sealed under
// KEY_ENCRYPTION_SECRET_PREVIOUS, or still stored in the clear, is opened and sealed under KEY_ENCRYPTION_SECRET.
// This is the one list of sealed columns: a new one must be added here, or a rotation leaves it unreadable.
import type { JsonWebKey } from 'node:crypto'
import type { Db } from '../db/database.ts'
import type { KeyEncryption } from './key-encryption.ts'
import { KeyStoreError } from './key-store.ts'
import { isPlain } from './server-secret.ts'

type Row = { id: string; stored: string }

type SealedColumn = {
  /** As the command's report names it. */
  what: string
  /** How one row is named in an error: no secret, only its key. */
  row(id: string): string
  list(db: Db): Promise<Row[]>
  /** The stored text as a JWK, whichever form it is in (each column has its own plain form). */
  open(encryption: KeyEncryption, stored: string): Promise<JsonWebKey>
  /** Writes `to` only if the row still holds `from`; false if someone changed it meanwhile. */
  replace(db: Db, id: string, from: string, to: string): Promise<boolean>
}

const changed = (result: { numUpdatedRows: bigint }) => result.numUpdatedRows > 0n

const SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    what: 'signing keys',
    row: (kid) => `the signing key ${kid}`,
    list: (db) =>
      db.selectFrom('signing_keys').select(['kid as id', 'private_jwk as stored']).orderBy('kid').execute(),
    open: (encryption, stored) => encryption.open(stored),
    replace: async (db, kid, from, to) =>
      changed(
        await db
          .updateTable('signing_keys')
          .set({ private_jwk: to })
          .where('kid', '=', kid)
          .where('private_jwk', '=', from)
          .executeTakeFirst(),
      ),
  },
  {
    what: 'server secrets',
    row: (name) => `the server secret "${name}"`,
    list: (db) =>
      db.selectFrom('server_secrets').select(['name as id', 'value as stored']).orderBy('name').execute(),
    // In the clear, a server secret is its base64url text (server-secret.ts), not a JWK.
    open: (encryption, stored) =>
      isPlain(stored) ? Promise.resolve({ kty: 'oct', k: stored }) : encryption.open(stored),
    replace: async (db, name, from, to) =>
      changed(
        await db
          .updateTable('server_secrets')
          .set({ value: to })
          .where('name', '=', name)
          .where('value', '=', from)
          .executeTakeFirst(),
      ),
  },
  {
    what: 'TOTP secrets',
    row: (userId) => `the TOTP secret of user ${userId}`,
    list: (db) =>
      db
        .selectFrom('totp_factors')
        .select(['user_id as id', 'secret as stored'])
        .orderBy('user_id')
        .execute(),
    open: (encryption, stored) => encryption.open(stored),
    replace: async (db, userId, from, to) =>
      changed(
        await db
          .updateTable('totp_factors')
          .set({ secret: to })
          .where('user_id', '=', userId)
          .where('secret', '=', from)
          .executeTakeFirst(),
      ),
  },
]

export type ResealCount = { what: string; resealed: number; current: number }

/**
 * Seals every sealed column under the current secret, in one transaction: if any value opens under neither
 * secret, nothing is changed. Values already under the current secret are left as they are, so running it
 * twice is harmless. A row changed meanwhile by a server (which seals under the current secret) is skipped.
 */
export async function resealAll(db: Db, encryption: KeyEncryption): Promise<ResealCount[]> {
  if (!encryption.encrypts) {
    throw new KeyStoreError('KEY_ENCRYPTION_SECRET is not set: there is no secret to seal under')
  }
  return db.transaction().execute(async (trx) => {
    const counts: ResealCount[] = []
    for (const column of SEALED_COLUMNS) {
      const count = { what: column.what, resealed: 0, current: 0 }
      for (const { id, stored } of await column.list(trx)) {
        if (encryption.isSealedUnderCurrent(stored)) {
          count.current++
          continue
        }
        const jwk = await column.open(encryption, stored).catch(() => {
          throw new KeyStoreError(
            `${column.row(id)} cannot be decrypted with KEY_ENCRYPTION_SECRET nor KEY_ENCRYPTION_SECRET_PREVIOUS; nothing was changed`,
          )
        })
        if (await column.replace(trx, id, stored, await encryption.seal(jwk))) count.resealed++
      }
      counts.push(count)
    }
    return counts
  })
}
