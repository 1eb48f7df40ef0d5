// Upgrades (issue 17, point 5): `tessera migrate --status` and `--down`, run as real processes against the run's
// database (a SQLite file, or a PostgreSQL schema); and a server of this release on a database that a newer
// release has migrated, as happens to the previous release's instances during a rolling upgrade.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { sql } from 'kysely'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDb } from '../../src/db/create-db.ts'
import { MIGRATIONS } from '../../src/db/migration-list.ts'
import { migrateDatabase, rollBackLast } from '../../src/db/migrator.ts'
import { buildTestApp, TEST_ENV } from '../helpers/build-test-app.ts'
import { runTessera } from '../helpers/cli-process.ts'
import { registerUser } from '../helpers/fixtures.ts'
import { call, signUp, TEST_PASSWORD } from '../helpers/http-client.ts'
import { startServer } from '../helpers/server-process.ts'
import { sharedTestDatabases, TEST_POSTGRES_URL } from '../helpers/test-database.ts'

const NAMES = Object.keys(MIGRATIONS)
const LAST = NAMES.at(-1) ?? ''
/** Named as the next release will name its first migration: after every migration of this one. */
const FUTURE = '9999-from-a-newer-release'

const noStackTrace = (text: string) => assert.doesNotMatch(text, /\bat .*\.(ts|js):\d+/)

describe('upgrades: migrate --status, migrate --down, and a database migrated by a newer release', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-migrations-'))
  const databases = sharedTestDatabases()
  let count = 0
  /** A new, empty database: a SQLite file in `dir`, or a PostgreSQL schema. */
  const newDatabase = () => databases.url(join(dir, `db${++count}.sqlite`))

  after(async () => {
    await databases.dropAll()
    rmSync(dir, { recursive: true, force: true })
  })

  const tessera = (args: string[], databaseUrl: string) =>
    runTessera(args, { cwd: dir, env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: databaseUrl } })

  async function ok(args: string[], databaseUrl: string): Promise<string> {
    const run = await tessera(args, databaseUrl)
    assert.equal(run.code, 0, run.stderr)
    return run.stdout
  }

  /** What a newer release leaves in Kysely's bookkeeping table once it has applied its first migration. */
  async function recordNewerMigration(databaseUrl: string): Promise<void> {
    const db = createDb(loadConfig({ ...TEST_ENV, DATABASE_URL: databaseUrl }).database)
    try {
      await sql`insert into kysely_migration (name, timestamp) values (${FUTURE}, ${new Date().toISOString()})`.execute(
        db,
      )
    } finally {
      await db.destroy()
    }
  }

  it('--status lists every migration as pending on a new database, then as applied with its time, and exits 0', async () => {
    const url = await newDatabase()
    const before = await ok(['migrate', '--status'], url)
    for (const name of NAMES) assert.match(before, new RegExp(`^${name} +pending$`, 'm'))
    assert.match(before, new RegExp(`^${NAMES.length} pending: "tessera migrate" applies them`, 'm'))

    await ok(['migrate'], url)
    const afterwards = await ok(['migrate', '--status'], url)
    for (const name of NAMES) {
      assert.match(
        afterwards,
        new RegExp(`^${name} +applied \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$`, 'm'),
      )
    }
    assert.match(afterwards, /^The database is up to date\.$/m)
  })

  it('--down rolls back the last migration when that deletes nothing; migrate applies it again', async () => {
    const url = await newDatabase()
    await ok(['migrate'], url)
    assert.equal(await ok(['migrate', '--down'], url), `Rolled back ${LAST}.\n`)
    assert.match(await ok(['migrate', '--status'], url), new RegExp(`^${LAST} +pending$`, 'm'))
    assert.equal(await ok(['migrate'], url), `Applied ${LAST}\n`)
  })

  it('--down refuses in one line to delete data, saying what it would delete, and changes nothing; --force deletes it', async () => {
    const url = await newDatabase()
    // A user with an external id (issue 18): the column of the last migration, set.
    const t = await buildTestApp({ env: { DATABASE_URL: url } })
    try {
      const user = await registerUser(t.app)
      await t.deps.db.updateTable('users').set({ external_id: '42' }).where('id', '=', user.id).execute()
    } finally {
      await t.close()
    }
    const lost = '1 value of users.external_id'

    const refused = await tessera(['migrate', '--down'], url)
    assert.equal(refused.code, 1)
    assert.equal(refused.stdout, '')
    assert.equal(
      refused.stderr,
      `tessera: rolling back ${LAST} would delete ${lost}; back the database up, then run tessera migrate --down --force\n`,
    )
    assert.match(await ok(['migrate', '--status'], url), new RegExp(`^${LAST} +applied `, 'm'))

    assert.equal(await ok(['migrate', '--down', '--force'], url), `Rolled back ${LAST}, deleting ${lost}.\n`)
    assert.match(await ok(['migrate', '--status'], url), new RegExp(`^${LAST} +pending$`, 'm'))
  })

  it('--down is refused in one line while a server runs on the SQLite database', {
    skip: TEST_POSTGRES_URL ? 'SQLite runs only: PostgreSQL servers cannot be seen from the command' : false,
  }, async () => {
    const url = await newDatabase()
    const server = await startServer({
      env: { NODE_ENV: 'test', DATABASE_URL: url, PUBLIC_URL: 'http://tessera.test' },
    })
    try {
      const refused = await tessera(['migrate', '--down'], url)
      assert.equal(refused.code, 1)
      assert.match(refused.stderr, /^tessera: a Tessera server is using .*: stop it/)
      assert.equal(refused.stderr.split('\n').length, 2, refused.stderr)
      assert.match(await ok(['migrate', '--status'], url), new RegExp(`^${LAST} +applied `, 'm'))
    } finally {
      assert.equal(await server.stop(), 0)
    }
    assert.equal(
      await ok(['migrate', '--down'], url),
      `Rolled back ${LAST}.\n`,
      'once the server has stopped',
    )
  })

  it('every migration declares exactly the tables and columns its down drops (so that --down can count them)', async () => {
    const url = await newDatabase()
    const config = loadConfig({ ...TEST_ENV, DATABASE_URL: url }).database
    const db = createDb(config)
    /** Each table of the database (of its own schema on PostgreSQL), with its columns. */
    const schemaOf = async () => {
      const { rows } = await sql<{ s: string }>`select current_schema() as s`
        .execute(db)
        .catch(() => ({ rows: [] }))
      const own = rows[0]?.s
      const tables = await db.introspection.getTables()
      return new Map(
        tables.filter((t) => t.schema === own).map((t) => [t.name, new Set(t.columns.map((c) => c.name))]),
      )
    }
    try {
      await migrateDatabase(config, db)
      for (const name of [...NAMES].reverse()) {
        const before = await schemaOf()
        assert.equal((await rollBackLast(config, db, { force: true })).name, name)
        const after = await schemaOf()
        const tables = [...before.keys()].filter((table) => !after.has(table))
        const columns = [...after].flatMap(([table, kept]) =>
          [...(before.get(table) ?? [])].filter((column) => !kept.has(column)).map((c) => `${table}.${c}`),
        )
        const declared = MIGRATIONS[name]?.dropsOnDown
        assert.deepEqual(tables.sort(), [...(declared?.tables ?? [])].sort(), `${name}: tables`)
        const declaredColumns = (declared?.columns ?? []).map((c) => `${c.table}.${c.column}`)
        assert.deepEqual(columns.sort(), declaredColumns.sort(), `${name}: columns`)
      }
    } finally {
      await db.destroy()
    }
  })

  it('a server starts on a database a newer release migrated, warns naming the newer migration, and serves logins', async () => {
    const url = await newDatabase()
    await ok(['migrate'], url)
    await recordNewerMigration(url)

    const server = await startServer({
      env: { NODE_ENV: 'test', DATABASE_URL: url, PUBLIC_URL: 'http://tessera.test' },
    })
    try {
      const { username } = await signUp(server.url)
      const login = await call(server.url, 'POST', '/auth/login', {
        body: { username, password: TEST_PASSWORD },
      })
      assert.equal(login.status, 200)
      const warnings = server
        .output()
        .split('\n')
        .filter((line) => line.includes(FUTURE))
      assert.equal(warnings.length, 1, server.output())
      assert.match(warnings[0] ?? '', /"level":40/)
      assert.match(warnings[0] ?? '', /applied by a newer release .*starting without migrating/)
    } finally {
      await server.stop()
    }

    const status = await ok(['migrate', '--status'], url)
    assert.match(status, new RegExp(`^${FUTURE} +applied \\S+, unknown to this release$`, 'm'))
    assert.match(status, /This release runs on it without migrating/)
    assert.match(await ok(['migrate'], url), new RegExp(`applied by a newer release: ${FUTURE}\\.`))
  })

  it('refuses in one line, server and migrate alike, when the database has a newer release’s migrations but lacks one of this release', async () => {
    const url = await newDatabase()
    await ok(['migrate'], url)
    await ok(['migrate', '--down'], url)
    await recordNewerMigration(url)
    const message = `the database has migrations this release does not know (${FUTURE}) but not this release's ${LAST}: run a release that has them all`

    const started = await startServer({ env: { NODE_ENV: 'test', DATABASE_URL: url } }).then(
      (server) => server.stop().then(() => assert.fail('the server started')),
      (error: Error) => error.message,
    )
    assert.match(started, /^server exited with 1:/)
    assert.equal(started.split('\n').filter((line) => line.includes(FUTURE)).length, 1, started)
    assert.match(started, new RegExp(`^${message.replace(/[()'.]/g, '\\$&')}$`, 'm'))
    noStackTrace(started)

    const migrate = await tessera(['migrate'], url)
    assert.equal(migrate.code, 1)
    assert.equal(migrate.stderr, `tessera: ${message}\n`)
    const down = await tessera(['migrate', '--down'], url)
    assert.equal(down.code, 1)
    assert.match(
      down.stderr,
      new RegExp(`^tessera: .*${FUTURE}.*: roll them back with the release that has them\\n$`),
    )
  })
})
