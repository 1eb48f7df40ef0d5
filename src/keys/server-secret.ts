// Random secrets the server needs but nobody configures (such as the key that derives rotated refresh
// tokens): generated once, kept in the database so that every instance and every restart shares them.
import { randomBytes } from 'node:crypto'
import type { Db } from '../db/database.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'

export async function getOrCreateServerSecret(
  db: Db,
  clock: Clock,
  name: string,
  bytes = 32,
): Promise<Buffer> {
  // Insert-if-absent, then read: two instances starting at once both end up with the one that won.
  await db
    .insertInto('server_secrets')
    .values({ name, value: randomBytes(bytes).toString('base64url'), created_at: epochSeconds(clock) })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute()
  const row = await db
    .selectFrom('server_secrets')
    .select('value')
    .where('name', '=', name)
    .executeTakeFirstOrThrow()
  return Buffer.from(row.value, 'base64url')
}
