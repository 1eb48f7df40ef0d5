// `tessera migrate`: applies pending migrations and says which ran. Not through createDeps, which migrates
// silently on its way to building services this command does not need.
import { loadConfig } from '../config/load-config.ts'
import { createDb } from '../db/create-db.ts'
import { migrateDatabase } from '../db/migrator.ts'
import { type Command, parseCommandArgs, writeLine } from './command.ts'

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Apply pending database migrations',
  help: `Usage: tessera migrate

Applies the database migrations that have not run yet on DATABASE_URL, in order, and lists them.
Safe to run again: with nothing pending it says the database is up to date. (serve applies pending
migrations at start too; this command is for doing it ahead of a deployment.)
`,
  async run(args, io) {
    parseCommandArgs(this.name, args, {})
    const { database } = loadConfig(io.env)
    const db = createDb(database)
    try {
      const { results = [] } = await migrateDatabase(database, db)
      const applied = results.filter((r) => r.status === 'Success')
      if (applied.length === 0) writeLine(io.stdout, 'The database is already up to date.')
      for (const r of applied) writeLine(io.stdout, `Applied ${r.migrationName}`)
    } finally {
      await db.destroy()
    }
    return 0
  },
}
