// The `tessera` executable, run as a real process (bin/tessera.js, as npx runs it) against the run's
// database (a SQLite file, or a PostgreSQL schema) from a fresh temporary folder, which is also the working
// directory, so that no developer's .env is read.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { bearer, login } from '../helpers/fixtures.ts'
import { sharedTestDatabases } from '../helpers/test-database.ts'

const BIN = fileURLToPath(new URL('../../bin/tessera.js', import.meta.url))

type Run = { code: number | null; stdout: string; stderr: string }

describe('the tessera command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'))
  const databases = sharedTestDatabases()
  let databaseUrl: string
  before(async () => {
    databaseUrl = await databases.url(join(dir, 'tessera.db'))
  })

  /** Runs `tessera ...args` with the given stdin (closed at once when there is none). */
  function tessera(args: string[], options: { input?: string; env?: Record<string, string> } = {}) {
    // process.execPath is the pinned Node 24 under `npm test`; only the variables the test means are passed.
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        DATABASE_URL: databaseUrl,
        ...options.env,
      },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.stdin.end(options.input ?? '')
    return new Promise<Run>((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (code) => resolve({ code, stdout, stderr }))
    })
  }

  const noStackTrace = (text: string) => assert.doesNotMatch(text, /\bat .*\.(ts|js):\d+/)

  after(async () => {
    await databases.dropAll()
    rmSync(dir, { recursive: true, force: true })
  })

  it('prints usage for --help on the program and on every command, and exits 0', async () => {
    const helps = [
      ['--help'],
      ['user', '--help'],
      ['serve', '--help'],
      ['migrate', '-h'],
      ['user', 'create', '--help'],
      ['user', 'list', '--help'],
      ['sessions', '--help'],
      ['sessions', 'purge', '--help'],
      ['keys', '--help'],
      ['keys', 'rotate', '--help'],
      ['keys', 'list', '--help'],
      ['keys', 'prune', '--help'],
    ]
    const runs = await Promise.all(helps.map((args) => tessera(args)))
    runs.forEach((run, i) => {
      const command = helps[i]?.filter((a) => !a.startsWith('-')).join(' ') ?? ''
      assert.equal(run.code, 0, run.stderr)
      assert.ok(run.stdout.startsWith(`Usage: tessera ${command}`), run.stdout)
      assert.equal(run.stderr, '')
    })
    assert.match(runs[0]?.stdout ?? '', /user create/)
    assert.match(runs[4]?.stdout ?? '', /--password-stdin/)
  })

  it('exits 2 with a message on stderr for an unknown command or option, or a missing argument', async () => {
    const runs = await Promise.all([
      tessera(['frobnicate']),
      tessera(['user', 'frobnicate']),
      tessera(['migrate', '--frobnicate']),
      tessera(['user', 'create']),
      tessera([]),
    ])
    const [command, subcommand, option, missing, nothing] = runs
    assert.match(command?.stderr ?? '', /Unknown command "frobnicate"/)
    assert.match(subcommand?.stderr ?? '', /Unknown command "user frobnicate"/)
    assert.match(option?.stderr ?? '', /Unknown option '--frobnicate'/)
    assert.match(missing?.stderr ?? '', /Missing <username>/)
    assert.match(nothing?.stderr ?? '', /^Usage: tessera/)
    for (const run of runs) {
      assert.equal(run.code, 2, run.stderr)
      assert.equal(run.stdout, '')
      noStackTrace(run.stderr)
    }
  })

  it('migrates a new database, and says it is up to date the second time', async () => {
    const first = await tessera(['migrate'])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /^Applied 0001-users-and-signing-keys$/m)
    const second = await tessera(['migrate'])
    assert.equal(second.code, 0, second.stderr)
    assert.equal(second.stdout, 'The database is already up to date.\n')
  })

  describe('user create and user list', () => {
    const password = 'admin password 1'
    let created: Run

    before(async () => {
      created = await tessera(
        ['user', 'create', 'Ada', '--admin', '--first-name', 'Ada', '--password-stdin'],
        {
          input: `${password}\n`,
        },
      )
    })

    it('creates an admin from a password on stdin and prints the id and username, never the password', () => {
      assert.equal(created.code, 0, created.stderr)
      assert.match(created.stdout, /Created user "Ada" \(roles: admin, user\)/)
      assert.match(created.stdout, /^id: [0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/m)
      assert.ok(!created.stdout.includes(password) && !created.stderr.includes(password))
    })

    it('lists users as a table with their roles', async () => {
      const plain = await tessera(['user', 'create', 'bob', '--password-stdin'], { input: 'bob password' })
      assert.equal(plain.code, 0, plain.stderr)
      const list = await tessera(['user', 'list'])
      assert.equal(list.code, 0, list.stderr)
      const [header, ada, bob] = list.stdout.trimEnd().split('\n')
      assert.match(header ?? '', /^ID\s+USERNAME\s+NAME\s+ROLES\s+DISABLED\s+CREATED$/)
      // The last name defaults to the username.
      assert.match(ada ?? '', /\sAda\s+Ada Ada\s+admin,user\s+no\s+\d{4}-\d\d-\d\dT/)
      assert.match(bob ?? '', /\sbob\s+bob bob\s+user\s+no\s/)
    })

    it('purges expired and revoked sessions with `sessions purge`, and keeps live ones', async () => {
      let t: TestApp | undefined
      try {
        t = await buildTestApp({ env: { DATABASE_URL: databaseUrl } })
        await login(t.app, 'ada', password) // a live session, which stays
        const ended = await login(t.app, 'ada', password)
        await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(ended) })
      } finally {
        await t?.close()
      }
      const run = await tessera(['sessions', 'purge'])
      assert.equal(run.code, 0, run.stderr)
      assert.equal(run.stdout, 'Purged 1 session.\n')
      assert.equal((await tessera(['sessions', 'purge'])).stdout, 'Purged 0 sessions.\n')
    })

    it('creates an admin who can log in through the HTTP API and use admin endpoints', async () => {
      let t: TestApp | undefined
      try {
        t = await buildTestApp({ env: { DATABASE_URL: databaseUrl } })
        const token = await login(t.app, 'ada', password)
        const response = await t.app.inject({ method: 'GET', url: '/users', headers: bearer(token) })
        assert.equal(response.statusCode, 200, response.body)
      } finally {
        await t?.close()
      }
    })

    it('refuses a username that is taken, in any case, with exit 1 and a clear message', async () => {
      const run = await tessera(['user', 'create', 'ADA', '--password-stdin'], { input: 'another password' })
      assert.equal(run.code, 1)
      assert.equal(run.stderr, 'tessera: The username "ADA" is taken\n')
    })

    it('refuses a password shorter than the API accepts, and creates nobody', async () => {
      const run = await tessera(['user', 'create', 'carol', '--password-stdin'], { input: 'short\n' })
      assert.equal(run.code, 1)
      assert.match(run.stderr, /The password is not valid \(8 to 256 characters\)/)
      const list = await tessera(['user', 'list'])
      assert.doesNotMatch(list.stdout, /carol/)
    })

    it('refuses a username the API would refuse, with exit 1', async () => {
      const invalid = await tessera(['user', 'create', 'a b', '--password-stdin'], {
        input: 'long enough pw',
      })
      assert.equal(invalid.code, 1)
      assert.match(invalid.stderr, /The username "a b" is not valid/)
    })

    it('will not prompt without a terminal: asks for --password-stdin instead (exit 2)', async () => {
      const run = await tessera(['user', 'create', 'dave'])
      assert.equal(run.code, 2)
      assert.match(run.stderr, /--password-stdin/)
    })
  })

  it('rotates, lists and prunes signing keys', async () => {
    const env = { DATABASE_URL: await databases.url(join(dir, 'keys.db')), JWT_ALGORITHM: 'ES256' }
    const first = await tessera(['keys', 'rotate'], { env })
    assert.equal(first.code, 0, first.stderr)
    const second = await tessera(['keys', 'rotate'], { env })
    const kid = (run: Run) => /key: ([\w-]{43})$/m.exec(run.stdout)?.[1]
    assert.ok(kid(first) && kid(second) && kid(first) !== kid(second), second.stdout)

    const list = await tessera(['keys', 'list'], { env })
    const [header, newest, oldest] = list.stdout.trimEnd().split('\n')
    assert.match(header ?? '', /^KID\s+ALG\s+STATE\s+CREATED\s+RETIRED\s+VERIFIES$/)
    assert.match(newest ?? '', new RegExp(`^${kid(second)}\\s+ES256\\s+active\\s.*\\syes$`))
    assert.match(oldest ?? '', new RegExp(`^${kid(first)}\\s+ES256\\s+retired\\s.*\\syes$`))
    assert.equal(
      (await tessera(['keys', 'prune'], { env })).stdout,
      'No key to prune.\n',
      'still in its grace period',
    )

    // Other commands only read keys: with another JWT_ALGORITHM they must not replace the ES256 key.
    assert.equal((await tessera(['user', 'list'], { env: { ...env, JWT_ALGORITHM: 'HS256' } })).code, 0)
    const after = await tessera(['keys', 'list'], { env })
    assert.match(after.stdout.split('\n')[1] ?? '', new RegExp(`^${kid(second)}\\s+ES256\\s+active`))

    const withSecret = await tessera(['keys', 'rotate'], {
      env: { ...env, JWT_ALGORITHM: 'HS256', JWT_SECRET: 's'.repeat(40) },
    })
    assert.equal(withSecret.code, 1)
    assert.match(withSecret.stderr, /JWT_SECRET is set/)
  })

  it('refuses --workers above 1 on an in-memory database, which workers cannot share (exit 1)', async () => {
    const run = await tessera(['serve', '--workers', '2'], { env: { DATABASE_URL: ':memory:' } })
    assert.equal(run.code, 1)
    assert.match(run.stderr, /WORKERS above 1 needs a database they can share/)
    noStackTrace(run.stderr)
  })

  it('reports a database it cannot reach in one message, without a stack trace (exit 1)', async () => {
    // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    const run = await tessera(['migrate'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' } })
    assert.equal(run.code, 1)
    assert.match(run.stderr, /The database is not reachable/)
    noStackTrace(run.stderr)
  })

  it('reports an invalid configuration in one message, without a stack trace (exit 1)', async () => {
    const run = await tessera(['user', 'list'], { env: { PORT: 'not a port' } })
    assert.equal(run.code, 1)
    assert.match(run.stderr, /PORT must be a whole number/)
    noStackTrace(run.stderr)
  })
})
