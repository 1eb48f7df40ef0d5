// Issue 17, point 3: backups. On SQLite, `tessera backup` copies the live database while a server serves and
// `tessera restore` puts it back, never under a running server; on PostgreSQL, the pg_dump and pg_restore
// commands of docs/operations.md run as written there. Either way, on the restored database, a user of the
// backup signs in with its password and a session of the backup refreshes.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runCommand, runTessera } from '../helpers/cli-process.ts'
import { call, TEST_PASSWORD } from '../helpers/http-client.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import { type PostJson, registerAndLogIn } from '../helpers/sign-up.ts'
import { adminQuery, TEST_POSTGRES_URL } from '../helpers/test-database.ts'

const OPERATIONS = fileURLToPath(new URL('../../docs/operations.md', import.meta.url))

// Registrations and logins in a loop from one address: the per-address limits would cut the loop short.
const ENV = {
  NODE_ENV: 'test',
  PUBLIC_URL: 'http://tessera.test',
  RATE_LIMIT_REGISTER_PER_IP: '0',
  RATE_LIMIT_LOGIN_PER_IP: '0',
}

const tessera = (args: string[], cwd: string, env: Record<string, string>) =>
  runTessera(args, { cwd, env: { LOG_LEVEL: 'silent', ...ENV, ...env } })

/** The one line of a command's doing, or of its refusal: no second line, no stack trace. */
function oneLine(text: string, pattern: RegExp): void {
  assert.equal(text.split('\n').length, 2, text)
  assert.match(text, pattern)
}

const poster =
  (server: ServerProcess): PostJson =>
  (path, body) =>
    call(server.url, 'POST', path, { body })

const logIn = (server: ServerProcess, username: string) =>
  call(server.url, 'POST', '/auth/login', { body: { username, password: TEST_PASSWORD } })

const refresh = (server: ServerProcess, token: string) =>
  call(server.url, 'POST', '/auth/refresh', { body: { refresh_token: token } })

/**
 * Two clients registering and signing in users without pause, until `stop`: the names of those done, and
 * every failure (there must be none: a backup does not disturb the server).
 */
function traffic(server: ServerProcess) {
  const done: string[] = []
  const failures: string[] = []
  let running = true
  const client = async () => {
    while (running) {
      const username = `u${randomUUID().slice(0, 8)}`
      try {
        await registerAndLogIn(poster(server), { username, password: TEST_PASSWORD })
        done.push(username)
      } catch (error) {
        failures.push(String(error))
      }
    }
  }
  const clients = [client(), client()]
  return {
    done,
    failures,
    async started() {
      while (done.length === 0 && failures.length === 0) await new Promise((r) => setTimeout(r, 20))
    },
    async stop() {
      running = false
      await Promise.all(clients)
    },
  }
}

describe('issue 17: backups', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-backup-'))
  const servers: ServerProcess[] = []
  const start = async (options: Parameters<typeof startServer>[0]) => {
    const server = await startServer(options)
    servers.push(server)
    return server
  }
  const cleanups: (() => Promise<void>)[] = []
  const loads: ReturnType<typeof traffic>[] = []
  const startTraffic = (server: ServerProcess) => {
    const started = traffic(server)
    loads.push(started)
    return started
  }
  after(async () => {
    // A test that failed midway leaves its clients looping: the run would never end.
    for (const started of loads) await started.stop()
    for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL')
    for (const cleanup of cleanups) await cleanup()
    rmSync(dir, { recursive: true, force: true })
  })

  it('restores, after the server was killed, a backup taken while it served: a user of the backup signs in, and a session of the backup refreshes; restore is refused while a server runs', {
    skip: TEST_POSTGRES_URL ? 'SQLite runs only (PostgreSQL: pg_dump below)' : false,
  }, async () => {
    const database = join(dir, 'data', 'tessera.db')
    const backup = join(dir, 'backup.db')
    const env = { ...ENV, DATABASE_URL: database }
    const first = await start({ env })
    const ada = await registerAndLogIn(poster(first), { username: 'ada', password: TEST_PASSWORD })

    const clients = startTraffic(first)
    await clients.started()
    const doneBefore = clients.done.slice()
    const made = await tessera(['backup', backup], dir, { DATABASE_URL: database })
    const doneDuring = clients.done.length - doneBefore.length
    await clients.stop()
    assert.equal(made.code, 0, made.stderr)
    oneLine(made.stdout, /^Wrote .*backup\.db \(\d+ KiB\): a backup of .*tessera\.db at migration \d{4}-/)
    assert.ok(doneDuring > 0, 'users were registered while the backup ran')
    assert.deepEqual(clients.failures, [], 'the server answered every request while the backup ran')

    const again = await tessera(['backup', backup], dir, { DATABASE_URL: database })
    assert.equal(again.code, 1)
    oneLine(again.stderr, /^tessera: .*backup\.db exists: pass --force to replace it\n/)

    const refused = await tessera(['restore', backup], dir, { DATABASE_URL: database })
    assert.equal(refused.code, 1)
    oneLine(refused.stderr, /^tessera: a Tessera server is using .*tessera\.db: stop it/)
    assert.equal((await logIn(first, 'ada')).status, 200, 'the refused restore left the database alone')

    // Written after the backup, then the server dies without closing: its last writes are in the -wal.
    await registerAndLogIn(poster(first), { username: 'grace', password: TEST_PASSWORD })
    first.child.kill('SIGKILL')
    await once(first.child, 'exit')
    assert.ok(existsSync(`${database}-wal`))

    const restored = await tessera(['restore', backup], dir, { DATABASE_URL: database })
    assert.equal(restored.code, 0, restored.stderr)
    oneLine(restored.stdout, /^Restored .*tessera\.db from .*backup\.db \(at migration \d{4}-/)
    assert.equal(
      existsSync(`${database}-wal`),
      false,
      "the replaced database's -wal is not the restored one's",
    )
    // The replaced database is kept, with its -wal: what was written after the backup can still be read.
    const kept = /kept as (\S+):/.exec(restored.stdout)?.[1] ?? ''
    assert.ok(existsSync(`${kept}-wal`), restored.stdout)
    const old = new DatabaseSync(kept, { readOnly: true })
    assert.ok(
      old.prepare("select 1 from users where username = 'grace'").get(),
      'grace is in the kept database',
    )
    old.close()

    // Two workers and their primary: each holds the database.
    const second = await start({ env, serveArgs: ['--workers', '2'] })
    assert.equal((await logIn(second, 'ada')).status, 200)
    const refreshed = await refresh(second, ada.refreshToken)
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body))
    assert.equal(typeof refreshed.body.access_token, 'string')
    assert.equal((await logIn(second, doneBefore[0] as string)).status, 200, 'a user from before the backup')
    assert.equal((await logIn(second, 'grace')).status, 401, 'a user written after the backup is not there')

    const refusedAgain = await tessera(['restore', backup], dir, { DATABASE_URL: database })
    assert.equal(refusedAgain.code, 1)
    oneLine(refusedAgain.stderr, /^tessera: a Tessera server is using .*tessera\.db: stop it/)
    assert.equal(await second.stop(), 0)
  })

  it('never writes a backup over the database or a file beside it, by any name; restores into a missing database only with --create, and never the backup of a newer release', {
    skip: TEST_POSTGRES_URL ? 'SQLite runs only' : false,
  }, async () => {
    const home = join(dir, 'names')
    const database = join(home, 'data', 'tessera.db')
    const env = { DATABASE_URL: database }
    const server = await start({ env: { ...ENV, ...env } })
    await registerAndLogIn(poster(server), { username: 'ada', password: TEST_PASSWORD })
    // Other names of the live files: a linked folder (systemd's /var/lib/tessera is one), a hard link.
    symlinkSync(join(home, 'data'), join(home, 'alias'))
    linkSync(database, join(home, 'hard.db'))
    for (const name of ['alias/tessera.db', 'alias/tessera.db-lock', 'data/tessera.db-wal', 'hard.db']) {
      const run = await tessera(['backup', '--force', join(home, name)], dir, env)
      assert.equal(run.code, 1, `${name}: ${run.stdout}`)
      oneLine(run.stderr, /^tessera: .* is the database, or a file SQLite or the servers keep beside it/)
    }
    assert.equal((await logIn(server, 'ada')).status, 200, 'the database is untouched')
    const backup = join(home, 'backup.db')
    assert.equal((await tessera(['backup', backup], dir, env)).code, 0)
    assert.equal(await server.stop(), 0)

    const elsewhere = { DATABASE_URL: join(home, 'drill', 'tessera.db') }
    const missing = await tessera(['restore', backup], dir, elsewhere)
    assert.equal(missing.code, 1)
    oneLine(
      missing.stderr,
      /^tessera: there is no database at .*drill\/tessera\.db \(DATABASE_URL\): .*--create/,
    )
    const created = await tessera(['restore', '--create', backup], dir, elsewhere)
    assert.equal(created.code, 0, created.stderr)
    oneLine(created.stdout, /^Restored .*drill\/tessera\.db from/)

    // What a newer release's backup looks like: a migration this release does not know.
    const newer = new DatabaseSync(backup)
    newer.exec("insert into kysely_migration (name, timestamp) values ('9999-from-a-newer-release', 'now')")
    newer.close()
    const refused = await tessera(['restore', backup], dir, env)
    assert.equal(refused.code, 1)
    oneLine(
      refused.stderr,
      /^tessera: .*backup\.db was made at migration 9999-from-a-newer-release, which this release does not know/,
    )
  })

  it('refuses to back up or restore a PostgreSQL database, pointing at pg_dump and pg_restore in docs/operations.md', async () => {
    const env = { DATABASE_URL: 'postgres://tessera@db.invalid:5432/tessera' }
    const backup = await tessera(['backup', join(dir, 'pg.db')], dir, env)
    assert.equal(backup.code, 1)
    oneLine(
      backup.stderr,
      /^tessera: DATABASE_URL is a PostgreSQL database: use pg_dump, .*docs\/operations\.md/,
    )
    const restore = await tessera(['restore', join(dir, 'pg.db')], dir, env)
    assert.equal(restore.code, 1)
    oneLine(
      restore.stderr,
      /^tessera: DATABASE_URL is a PostgreSQL database: use pg_restore, .*docs\/operations\.md/,
    )
    assert.equal(existsSync(join(dir, 'pg.db')), false)
  })

  it('on PostgreSQL, the pg_dump and pg_restore commands of docs/operations.md, run as written there, restore a user who signs in and a session that refreshes', {
    skip: TEST_POSTGRES_URL ? false : 'PostgreSQL runs only',
  }, async () => {
    const dump = documented('pg_dump')
    const restore = documented('pg_restore')
    const source = await freshDatabase()
    const target = await freshDatabase()
    cleanups.push(source.drop, target.drop)
    const env = { ...ENV, DATABASE_URL: source.url }
    const server = await start({ env })
    const ada = await registerAndLogIn(poster(server), { username: 'ada', password: TEST_PASSWORD })

    const clients = startTraffic(server)
    await clients.started()
    const dumped = await runCommand('bash', ['-c', dump], { cwd: dir, env: { DATABASE_URL: source.url } })
    await clients.stop()
    assert.equal(dumped.code, 0, dumped.stderr)
    assert.deepEqual(clients.failures, [])
    await registerAndLogIn(poster(server), { username: 'grace', password: TEST_PASSWORD })
    assert.equal(await server.stop(), 0)

    const restored = await runCommand('bash', ['-c', restore], {
      cwd: dir,
      env: { DATABASE_URL: target.url },
    })
    assert.equal(restored.code, 0, restored.stderr)
    const again = await start({ env: { ...ENV, DATABASE_URL: target.url } })
    assert.equal((await logIn(again, 'ada')).status, 200)
    const refreshed = await refresh(again, ada.refreshToken)
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body))
    assert.equal((await logIn(again, 'grace')).status, 401, 'a user written after the dump is not there')
    assert.equal(await again.stop(), 0)
  })
})

/** The one command of docs/operations.md's "Backups" section that runs `tool`, as written there. */
function documented(tool: string): string {
  const doc = readFileSync(OPERATIONS, 'utf8')
  const begin = doc.indexOf('\n## Backups\n')
  const section = doc.slice(begin, doc.indexOf('\n## ', begin + 1))
  const lines = [...section.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((block) => (block[1] ?? '').split('\n'))
    .map((line) => line.trim())
    .filter((line) => line.startsWith(`${tool} `))
  assert.equal(lines.length, 1, `one ${tool} command in the Backups section of docs/operations.md`)
  return lines[0] as string
}

/** A new, empty database on the test PostgreSQL server (not a schema: pg_dump dumps a whole database). */
async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `tessera_backup_${randomUUID().replaceAll('-', '')}`
  await adminQuery(`create database ${name}`)
  const url = new URL(TEST_POSTGRES_URL as string)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => adminQuery(`drop database if exists ${name} with (force)`) }
}
