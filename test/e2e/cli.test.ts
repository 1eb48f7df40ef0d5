// The `tessera` executable, run as a real process (bin/tessera.js, as npx runs it) against the run's
// database (a SQLite file, or a PostgreSQL schema) from a fresh temporary folder, which is also the working
// directory, so that no developer's .env is read.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { type CommandRun, runTessera } from '../helpers/cli-process.ts'
import { bearer, login } from '../helpers/fixtures.ts'
import { sharedTestDatabases } from '../helpers/test-database.ts'
import { base32Decode, totp } from '../helpers/totp.ts'

type Run = CommandRun

describe('the tessera command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'))
  const databases = sharedTestDatabases()
  let databaseUrl: string
  before(async () => {
    databaseUrl = await databases.url(join(dir, 'tessera.db'))
  })

  /** Runs `tessera ...args` with the given stdin (closed at once when there is none). */
  const tessera = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) =>
    runTessera(args, {
      cwd: dir,
      input: options.input,
      env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: databaseUrl, ...options.env },
    })

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

  describe('issue 11: user create refuses what POST /auth/register refuses', () => {
    let env: Record<string, string>
    before(async () => {
      env = { DATABASE_URL: await databases.url(join(dir, 'create-rules.db')) }
      // Migrated once first: the runs below start at the same time.
      const migrated = await tessera(['migrate'], { env })
      assert.equal(migrated.code, 0, migrated.stderr)
    })

    it('refuses a common password, or one that contains the username, and creates nobody (exit 1)', async () => {
      const [common, withName] = await Promise.all([
        tessera(['user', 'create', 'carol', '--password-stdin'], { input: 'password1\n', env }),
        tessera(['user', 'create', 'dorothy', '--password-stdin'], { input: 'Dorothy rocks', env }),
      ])
      assert.equal(common.code, 1, common.stderr)
      assert.match(common.stderr, /^tessera: The password is too common/)
      assert.equal(withName.code, 1, withName.stderr)
      assert.equal(withName.stderr, 'tessera: The password must not contain the username\n')
      const list = await tessera(['user', 'list'], { env })
      assert.doesNotMatch(list.stdout, /carol|dorothy/)
    })

    it('refuses a username mixing scripts, and a name with an invisible character, before asking a password', async () => {
      const [mixed, name] = await Promise.all([
        tessera(['user', 'create', '\u0430dmin2']),
        tessera(['user', 'create', 'eve', '--first-name', 'Eve\u202E']),
      ])
      assert.equal(mixed.code, 1, mixed.stderr)
      assert.match(mixed.stderr, /The username "\u0430dmin2" mixes scripts/)
      assert.equal(name.code, 1, name.stderr)
      assert.match(name.stderr, /--first-name is not valid \(.*format.*\)/)
    })

    it('may create a reserved username, since the operator is trusted', async () => {
      const run = await tessera(['user', 'create', 'admin', '--admin', '--password-stdin'], {
        input: 'a long operator passphrase',
        env,
      })
      assert.equal(run.code, 0, run.stderr)
      assert.match(run.stdout, /Created user "admin"/)
    })
  })

  describe('issue 11: user grant-admin, revoke-admin, enable and disable', () => {
    let env: Record<string, string>
    const password = 'a long operator passphrase'
    before(async () => {
      env = { DATABASE_URL: await databases.url(join(dir, 'admins.db')) }
      const migrated = await tessera(['migrate'], { env })
      assert.equal(migrated.code, 0, migrated.stderr)
      const created = await Promise.all(
        ['root_ada', 'bob_b'].map((name, i) =>
          tessera(['user', 'create', name, ...(i === 0 ? ['--admin'] : []), '--password-stdin'], {
            input: password,
            env,
          }),
        ),
      )
      for (const run of created) assert.equal(run.code, 0, run.stderr)
    })

    const roles = async (username: string) => {
      const list = await tessera(['user', 'list'], { env })
      const line = list.stdout.split('\n').find((l) => l.includes(` ${username} `)) ?? ''
      return { roles: /\s(\S+)\s+(yes|no)\s+\d{4}-/.exec(line)?.[1], disabled: /\syes\s+\d{4}-/.test(line) }
    }

    it('prints usage for --help on each, and exits 2 without a username', async () => {
      const names = ['grant-admin', 'revoke-admin', 'enable', 'disable']
      const helps = await Promise.all(names.map((name) => tessera(['user', name, '--help'])))
      helps.forEach((run, i) => {
        assert.equal(run.code, 0, run.stderr)
        assert.ok(run.stdout.startsWith(`Usage: tessera user ${names[i]} <username>`), run.stdout)
      })
      const group = await tessera(['user', '--help'])
      for (const name of names) assert.match(group.stdout, new RegExp(`user ${name} `))
      const missing = await Promise.all(names.map((name) => tessera(['user', name], { env })))
      for (const run of missing) {
        assert.equal(run.code, 2)
        assert.match(run.stderr, /Missing <username>/)
      }
    })

    it('exits 1 for an unknown user', async () => {
      const run = await tessera(['user', 'disable', 'nobody_here'], { env })
      assert.equal(run.code, 1)
      assert.equal(run.stderr, 'tessera: No user "nobody_here"\n')
    })

    it('refuses to revoke or disable the last enabled admin (exit 1), and does once another admin exists', async () => {
      const [revoke, disable] = await Promise.all([
        tessera(['user', 'revoke-admin', 'ROOT_ADA'], { env }),
        tessera(['user', 'disable', 'root_ada'], { env }),
      ])
      for (const run of [revoke, disable]) {
        assert.equal(run.code, 1, run.stderr)
        assert.match(run.stderr, /^tessera: .*no enabled admin/)
      }
      assert.deepEqual(await roles('root_ada'), { roles: 'admin,user', disabled: false })

      const grant = await tessera(['user', 'grant-admin', 'bob_b'], { env })
      assert.equal(grant.code, 0, grant.stderr)
      assert.match(grant.stdout, /"bob_b" is now an admin/)
      const revoked = await tessera(['user', 'revoke-admin', 'root_ada'], { env })
      assert.equal(revoked.code, 0, revoked.stderr)
      assert.deepEqual(await roles('root_ada'), { roles: 'user', disabled: false })
      assert.deepEqual(await roles('bob_b'), { roles: 'user,admin', disabled: false })
      // Now bob_b is the one who must stay.
      assert.equal((await tessera(['user', 'disable', 'bob_b'], { env })).code, 1)
    })

    it('disables a user, ending their sessions at once, and enables them again', async () => {
      let t: TestApp | undefined
      try {
        t = await buildTestApp({ env: { DATABASE_URL: env.DATABASE_URL ?? '' } })
        const signedIn = await t.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { username: 'root_ada', password },
        })
        const { refresh_token } = signedIn.json()
        const disabled = await tessera(['user', 'disable', 'root_ada'], { env })
        assert.equal(disabled.code, 0, disabled.stderr)
        assert.match(disabled.stdout, /Disabled "root_ada"/)
        const refresh = await t.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refresh_token },
        })
        assert.equal(refresh.statusCode, 401, refresh.body)
        const relogin = await t.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { username: 'root_ada', password },
        })
        assert.equal(relogin.statusCode, 401)

        const enabled = await tessera(['user', 'enable', 'root_ada'], { env })
        assert.equal(enabled.code, 0, enabled.stderr)
        await login(t.app, 'root_ada', password)
      } finally {
        await t?.close()
      }
    })
  })

  it('issue 14: user reset-link prints a single-use link that sets the password; user unlock forgets failed logins', async () => {
    const env = {
      DATABASE_URL: await databases.url(join(dir, 'recovery.db')),
      PUBLIC_URL: 'https://auth.test',
      // A first wait long enough to outlast the commands below.
      LOCKOUT_BASE_SECONDS: '600',
    }
    const migrated = await tessera(['migrate'], { env })
    assert.equal(migrated.code, 0, migrated.stderr)
    const password = 'a long operator passphrase'
    const created = await tessera(['user', 'create', 'rita_r', '--password-stdin'], { input: password, env })
    assert.equal(created.code, 0, created.stderr)
    let t: TestApp | undefined
    try {
      t = await buildTestApp({ env })
      const app = t.app
      const run = await tessera(['user', 'reset-link', 'RITA_R'], { env })
      assert.equal(run.code, 0, run.stderr)
      assert.doesNotMatch(run.stdout, new RegExp(password))
      const token = /^token: ([\w-]{59})$/m.exec(run.stdout)?.[1] ?? ''
      assert.match(run.stdout, new RegExp(`^https://auth\\.test/reset-password#token=${token}$`, 'm'))
      assert.match(run.stdout, /valid for 30 minutes, once/)
      const reset = () =>
        app.inject({
          method: 'POST',
          url: '/auth/password-reset',
          payload: { token, newPassword: 'a brand new passphrase' },
        })
      assert.equal((await reset()).statusCode, 204)
      assert.equal((await reset()).statusCode, 400)
      await login(app, 'rita_r', 'a brand new passphrase')

      // Six wrong passwords slow the account down for clients without its device token.
      for (let i = 0; i < 6; i++) {
        const wrong = await app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: { username: 'rita_r', password: `wrong guess ${i}` },
        })
        assert.equal(wrong.statusCode, 401)
      }
      const slowed = await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: 'rita_r', password: 'a brand new passphrase' },
      })
      assert.equal(slowed.statusCode, 401)
      const unlock = await tessera(['user', 'unlock', 'rita_r'], { env })
      assert.equal(unlock.code, 0, unlock.stderr)
      assert.match(unlock.stdout, /clients without a device token: 6 failed logins, slowed down until /)
      await login(app, 'rita_r', 'a brand new passphrase')
      assert.match((await tessera(['user', 'unlock', 'rita_r'], { env })).stdout, /no failed logins counted/)
    } finally {
      await t?.close()
    }
  })

  it('issue 15: user mfa-reset removes a second factor, so that logins ask for the password only', async () => {
    const env = { DATABASE_URL: await databases.url(join(dir, 'mfa.db')) }
    const migrated = await tessera(['migrate'], { env })
    assert.equal(migrated.code, 0, migrated.stderr)
    const password = 'a long operator passphrase'
    assert.equal(
      (await tessera(['user', 'create', 'otto_m', '--password-stdin'], { input: password, env })).code,
      0,
    )
    let t: TestApp | undefined
    try {
      t = await buildTestApp({ env })
      const app = t.app
      const token = await login(app, 'otto_m', password)
      const started = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(token) })
      const secret = base32Decode(started.json().secret)
      const code = totp(secret, Math.floor(Date.now() / 1000))
      const confirmed = await app.inject({
        method: 'POST',
        url: '/auth/mfa/totp/confirm',
        headers: bearer(token),
        payload: { code },
      })
      assert.equal(confirmed.statusCode, 200, confirmed.body)
      const challenged = await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: 'otto_m', password },
      })
      assert.equal(challenged.json().mfa_required, true)

      const reset = await tessera(['user', 'mfa-reset', 'OTTO_M'], { env })
      assert.equal(reset.code, 0, reset.stderr)
      assert.match(reset.stdout, /Removed the second factor of "otto_m"/)
      await login(app, 'otto_m', password)
      assert.match((await tessera(['user', 'mfa-reset', 'otto_m'], { env })).stdout, /has no second factor/)
      const events = await app.inject({ method: 'GET', url: '/auth/activity', headers: bearer(token) })
      const disabled = events.json().events.find((event: { type: string }) => event.type === 'mfa.disabled')
      assert.deepEqual(disabled?.actor, { kind: 'cli' })
    } finally {
      await t?.close()
    }
  })

  it('on SQLite, waits for a write another process has in flight instead of failing (database is locked)', async () => {
    // A change reads the row before writing it. Another process (a running server, a second command) holds
    // the write lock meanwhile: the command must wait its turn, up to DATABASE_BUSY_TIMEOUT_MS.
    const env = { DATABASE_URL: join(dir, 'busy.db') }
    const migrated = await tessera(['migrate'], { env })
    assert.equal(migrated.code, 0, migrated.stderr)
    const created = await tessera(['user', 'create', 'busy_bee', '--password-stdin'], {
      input: 'a long operator passphrase',
      env,
    })
    assert.equal(created.code, 0, created.stderr)

    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { DatabaseSync } from 'node:sqlite'
         const db = new DatabaseSync(${JSON.stringify(env.DATABASE_URL)})
         db.exec('begin immediate; update users set updated_at = updated_at')
         process.stdout.write('locked\\n')
         setTimeout(() => { db.exec('commit'); process.stdout.write('committed\\n') }, 700)`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    const output: string[] = []
    const locked = new Promise<void>((resolve) =>
      holder.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output.push(chunk)
        if (output.join('').includes('locked')) resolve()
      }),
    )
    const exited = new Promise((resolve) => holder.on('close', resolve))
    await locked
    const grant = await tessera(['user', 'grant-admin', 'busy_bee'], { env })
    await exited
    assert.equal(grant.code, 0, grant.stderr)
    assert.match(grant.stdout, /"busy_bee" is now an admin/)
    assert.match(output.join(''), /committed/, 'the lock was held until the command had waited')
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
      env: { ...env, JWT_ALGORITHM: 'HS256', JWT_SECRET: 'cli-test-jwt-secret-of-more-than-32-bytes' },
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
