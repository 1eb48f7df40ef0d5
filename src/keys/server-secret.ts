// Random secrets the server needs but nobody configures (such as the key that authenticates refresh tokens):
// generated once, kept in the database so that every instance and every restart shares them. With
// KEY_ENCRYPTION_SECRET set they are sealed like signing keys (key-encryption.ts); without it they are stored
// as the releases before sealing stored them, base64url text, which those releases can still read.
import { randomBytes } from 'node:crypto'
import type { Config } from '../config/load-config.ts'
import type { Db } from '../db/database.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { type KeyEncryption, keyEncryptionFor } from './key-encryption.ts'
import { KeyStoreError } from './key-store.ts'

// base64url never holds a dot; a compact JWE always does.
export const isPlain = (stored: string) => /^[A-Za-z0-9_-]+$/.test(stored)

const store = (encryption: KeyEncryption, secret: Buffer) =>
  encryption.encrypts
    ? encryption.seal({ kty: 'oct', k: secret.toString('base64url') })
    : Promise.resolve(secret.toString('base64url'))

async function read(encryption: KeyEncryption, name: string, stored: string): Promise<Buffer> {
  if (isPlain(stored)) return Buffer.from(stored, 'base64url')
  if (!encryption.encrypts) {
    throw new KeyStoreError(
      `The server secret "${name}" in the database is encrypted: set KEY_ENCRYPTION_SECRET to read it`,
    )
  }
  const jwk = await encryption.open(stored).catch(() => undefined)
  if (typeof jwk?.k !== 'string') {
    throw new KeyStoreError(
      `The server secret "${name}" in the database cannot be decrypted with this KEY_ENCRYPTION_SECRET`,
    )
  }
  return Buffer.from(jwk.k, 'base64url')
}

/**
 * The secret `name`, made on first use. One stored in the clear (by a release before sealing, or while
 * KEY_ENCRYPTION_SECRET was unset) is sealed when read with KEY_ENCRYPTION_SECRET set; its value is unchanged,
 * so refresh tokens issued before still refresh.
 */
export async function getOrCreateServerSecret(
  db: Db,
  clock: Clock,
  config: Pick<Config, 'keyEncryptionSecret' | 'keyEncryptionSecretPrevious'>,
  name: string,
  bytes = 32,
): Promise<Buffer> {
  const encryption = keyEncryptionFor(config)
  const find = () =>
    db.selectFrom('server_secrets').select('value').where('name', '=', name).executeTakeFirst()
  let row = await find()
  if (!row) {
    // Insert-if-absent, then read: two instances starting at once both end up with the one that won.
    await db
      .insertInto('server_secrets')
      .values({ name, value: await store(encryption, randomBytes(bytes)), created_at: epochSeconds(clock) })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute()
    row = await find()
    if (!row) throw new Error(`The server secret "${name}" was inserted but cannot be read back`)
  }
  const secret = await read(encryption, name, row.value)
  if (encryption.encrypts && isPlain(row.value)) {
    // Only if still plain: another instance sealing it at the same moment seals the same value.
    await db
      .updateTable('server_secrets')
      .set({ value: await store(encryption, secret) })
      .where('name', '=', name)
      .where('value', '=', row.value)
      .execute()
  }
  return secret
}
