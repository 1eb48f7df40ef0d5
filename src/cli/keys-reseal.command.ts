// `tessera keys reseal`: the last step of a KEY_ENCRYPTION_SECRET rotation (docs/operations.md, Rotating
// secrets). Opens what is sealed under KEY_ENCRYPTION_SECRET_PREVIOUS and seals it under KEY_ENCRYPTION_SECRET.
import { loadConfig } from '../config/load-config.ts'
import { createDb } from '../db/create-db.ts'
import { migrateToLatest } from '../db/migrator.ts'
import { keyEncryptionFor } from '../keys/key-encryption.ts'
import { resealAll } from '../keys/reseal.ts'
import { type Command, parseCommandArgs, writeLine } from './command.ts'

export const keysResealCommand: Command = {
  name: 'keys reseal',
  summary: 'Re-encrypt stored keys and secrets under a new KEY_ENCRYPTION_SECRET',
  help: `Usage: tessera keys reseal

Re-encrypts, in one transaction, every key and secret stored encrypted in the database (signing keys, the
server secrets, users' TOTP secrets) that is still under KEY_ENCRYPTION_SECRET_PREVIOUS, or in the clear,
under KEY_ENCRYPTION_SECRET, and says how many of each. Run it with both set, once every instance runs with
both; then remove KEY_ENCRYPTION_SECRET_PREVIOUS. What is already under KEY_ENCRYPTION_SECRET is left alone, so
running it again changes nothing. If anything opens under neither secret, nothing is changed.
Safe while servers run.
`,
  async run(args, io) {
    parseCommandArgs(this.name, args, {})
    const config = loadConfig(io.env)
    const db = createDb(config.database)
    try {
      await migrateToLatest(db)
      const counts = await resealAll(db, keyEncryptionFor(config))
      for (const { what, resealed, current } of counts) {
        writeLine(io.stdout, `${what}: ${resealed} resealed, ${current} already under KEY_ENCRYPTION_SECRET`)
      }
      if (config.keyEncryptionSecretPrevious !== undefined) {
        writeLine(
          io.stdout,
          'Nothing is left under KEY_ENCRYPTION_SECRET_PREVIOUS: remove it from every instance and from here.',
        )
      }
      return 0
    } finally {
      await db.destroy()
    }
  },
}
