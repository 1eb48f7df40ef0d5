// The server as a user starts it: a real process, in a fresh directory, with nothing configured.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, it } from 'node:test'
import { call } from '../helpers/http-client.ts'
import { startServer } from '../helpers/server-process.ts'
import { createTestDatabase, TEST_POSTGRES_URL } from '../helpers/test-database.ts'

const SERVER = resolve(import.meta.dirname, '../../src/server.ts')

const start = (cwd: string) => startServer({ cwd })

describe('the server process', () => {
  const dirs: string[] = []
  const freshDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-server-'))
    dirs.push(dir)
    return dir
  }
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('starts with nothing configured, creates and migrates ./data/tessera.db, and keeps its key across restarts', async () => {
    const dir = freshDir()
    const first = await start(dir)
    assert.equal((await fetch(`${first.url}/ready`)).status, 200)
    const db = join(dir, 'data/tessera.db')
    assert.equal(statSync(db).mode & 0o777, 0o600, 'the database file is readable by its owner only')

    const user = {
      username: 'ada',
      password: 'correct horse battery',
      firstName: 'Ada',
      lastName: 'Lovelace',
    }
    assert.equal((await call(first.url, 'POST', '/auth/register', { body: user })).status, 201)
    const { body } = await call(first.url, 'POST', '/auth/login', {
      body: { username: 'ada', password: user.password },
    })
    assert.equal(await first.stop(), 0, 'SIGTERM is a clean exit')

    const second = await start(dir)
    const me = await fetch(`${second.url}/auth/me`, {
      headers: { authorization: `Bearer ${body.access_token}` },
    })
    assert.equal(me.status, 200, 'a token from before the restart is still valid')
    assert.ok(!second.output().includes(String(body.access_token)), 'tokens are never logged')
    assert.ok(!first.output().includes(user.password), 'passwords are never logged')
    await second.stop()
  })

  it('reads a .env file in the working directory', async () => {
    const dir = freshDir()
    writeFileSync(join(dir, '.env'), 'JWT_AUDIENCE=from-dotenv\nDATABASE_URL=./custom.db\n')
    const server = await start(dir)
    const user = { username: 'bob', password: 'correct horse battery', firstName: 'B', lastName: 'B' }
    await call(server.url, 'POST', '/auth/register', { body: user })
    const { body } = await call(server.url, 'POST', '/auth/login', {
      body: { username: 'bob', password: user.password },
    })
    const claims = JSON.parse(Buffer.from(body.access_token?.split('.')[1] ?? '', 'base64url').toString())
    assert.equal(claims.aud, 'from-dotenv')
    assert.ok(statSync(join(dir, 'custom.db')).isFile())
    await server.stop()
  })

  it('refuses to start in production with no signing key configured or stored, and says why', async () => {
    const dir = freshDir()
    const child = spawn(process.execPath, [SERVER], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        PUBLIC_URL: 'https://auth.example.com',
        PORT: '0',
      },
    })
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    const code = await new Promise((r) => child.once('exit', r))
    assert.equal(code, 1)
    assert.match(stderr, /No signing key: with NODE_ENV=production/)
    assert.match(stderr, /JWT_SECRET/)
    assert.ok(!stderr.includes('    at '), 'a message, not a stack trace')
  })

  // Issue 11, point 4: an HMAC key at least as long as its hash (RFC 7518, section 3.2), and random.
  const refusal = async (dir: string, env: Record<string, string>) => {
    const child = spawn(process.execPath, [SERVER], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', ...env },
    })
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk
      // Had the check let it through, it would serve: stopped here, so the test fails instead of hanging.
      if (output.includes('Server listening')) child.kill('SIGKILL')
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    const code = await new Promise((r) => child.once('exit', r))
    return { code, output }
  }

  it('refuses to start with a JWT_SECRET of one repeated character, says why, and never echoes it', async () => {
    const dir = freshDir()
    const secret = 'a'.repeat(64)
    const { code, output } = await refusal(dir, { JWT_SECRET: secret })
    assert.equal(code, 1)
    assert.ok(!output.includes('Server listening'), 'it never listened')
    assert.match(output, /JWT_SECRET looks predictable: it needs at least 10 distinct characters/)
    assert.ok(!output.includes('aaaaaaaa'), 'the secret is never echoed')
    assert.ok(!output.includes('    at '), 'a message, not a stack trace')
  })

  it('refuses to start with HS512 and a random 48-byte JWT_SECRET (HS512 needs 64), says why, and never echoes it', async () => {
    const dir = freshDir()
    const secret = randomBytes(36).toString('base64') // 48 characters, 48 bytes, random
    assert.equal(Buffer.byteLength(secret), 48)
    const { code, output } = await refusal(dir, { JWT_ALGORITHM: 'HS512', JWT_SECRET: secret })
    assert.equal(code, 1)
    assert.ok(!output.includes('Server listening'), 'it never listened')
    assert.match(output, /JWT_SECRET must be at least 64 bytes \(UTF-8\) for HS512, the size of its hash/)
    assert.doesNotMatch(output, /looks predictable/, 'refused for its length, not as predictable')
    assert.ok(!output.includes(secret), 'the secret is never echoed')
    assert.ok(!output.includes('    at '), 'a message, not a stack trace')
  })

  it('starts with HS512 and a random 64-byte JWT_SECRET, and signs with it', async () => {
    const dir = freshDir()
    const secret = randomBytes(48).toString('base64') // 64 characters, 64 bytes
    assert.equal(Buffer.byteLength(secret), 64)
    const server = await startServer({ cwd: dir, env: { JWT_ALGORITHM: 'HS512', JWT_SECRET: secret } })
    try {
      const user = { username: 'cyril', password: 'correct horse battery', firstName: 'C', lastName: 'Y' }
      assert.equal((await call(server.url, 'POST', '/auth/register', { body: user })).status, 201)
      const { body } = await call(server.url, 'POST', '/auth/login', {
        body: { username: 'cyril', password: user.password },
      })
      const header = JSON.parse(Buffer.from(body.access_token?.split('.')[0] ?? '', 'base64url').toString())
      assert.equal(header.alg, 'HS512')
      assert.ok(!server.output().includes(secret), 'the secret is never logged')
    } finally {
      assert.equal(await server.stop(), 0, 'SIGTERM is a clean exit')
    }
  })

  describe('issue 17, point 6: a clear start', () => {
    const firstLine = (output: string) => JSON.parse(output.split('\n')[0] ?? '').msg as string

    it('says in its first log line the URL, the database, the signing algorithm and kid, whether the key was generated, and the mode', async () => {
      const dir = freshDir()
      const first = await start(dir)
      const generated = firstLine(first.output())
      assert.equal(await first.stop(), 0)
      assert.match(generated, new RegExp(`^Server listening at ${first.url}: Tessera`))
      assert.ok(generated.includes(`SQLite ${join(dir, 'data/tessera.db')}`), generated)
      assert.match(generated, /signing HS256 with kid hs-[\w-]+ \(generated at this start\)/)
      assert.match(generated, /NODE_ENV=development/)

      const again = await start(dir)
      const stored = firstLine(again.output())
      assert.equal(await again.stop(), 0)
      assert.match(stored, /signing HS256 with kid hs-[\w-]+ \(stored in the database\)/)
      assert.equal(/kid (\S+)/.exec(stored)?.[1], /kid (\S+)/.exec(generated)?.[1], 'the same key')
    })

    it('with several workers, begins its log with the start line too, saying whether the key was generated', async () => {
      const dir = freshDir()
      const server = await startServer({ cwd: dir, serveArgs: ['--workers', '2'] })
      // The primary's line and both workers' (`Server listening at`, which tools wait for, is a process's own).
      const starts = () => server.output().match(/(Server|Tessera) listening at/g)?.length ?? 0
      for (let tries = 0; tries < 100 && starts() < 3; tries++) {
        await new Promise((r) => setTimeout(r, 100))
      }
      // The whole log, read once the processes have exited: the primary writes its warning just after its start
      // line, but a worker's line may reach the pipe between them, so a log read as soon as three start lines
      // are in may not hold the warning yet (CI caught that twice). Every failure below shows it.
      const code = await server.stop()
      const log = () => server.output()
      const lines = log().split('\n')
      assert.equal(code, 0, log())
      // Whichever process wrote first: each line says it all.
      assert.match(
        lines[0] ?? '',
        /"msg":"(Tessera listening at http:\/\/127\.0\.0\.1:\d+ through its workers|Server listening at http:\/\/127\.0\.0\.1:\d+: Tessera), [^"]*, 2 workers"/,
        log(),
      )
      // Only the primary knows that it made the key.
      assert.ok(
        lines.some((line) =>
          /"msg":"Tessera listening at .*\(generated at this start\).*2 workers/.test(line),
        ),
        log(),
      )
      const warning = lines.findIndex((line) => line.includes('no REDIS_URL'))
      assert.ok(warning > 0, `the warning follows a start line:\n${log()}`)
    })

    it('names a PostgreSQL database without its password', {
      skip: !TEST_POSTGRES_URL && 'PostgreSQL runs only',
    }, async () => {
      const database = await createTestDatabase()
      try {
        const url = new URL(database.url)
        url.password = 'pw-never-logged' // trust authentication ignores it
        const server = await startServer({ cwd: freshDir(), env: { DATABASE_URL: url.href } })
        const line = firstLine(server.output())
        assert.equal(await server.stop(), 0)
        assert.match(line, new RegExp(`PostgreSQL postgres://${url.username}@${url.host}${url.pathname}`))
        assert.ok(!server.output().includes('pw-never-logged'), 'the password is never logged')
      } finally {
        await database.drop()
      }
    })

    it('logs the path of each request, never its query string', async () => {
      const server = await start(freshDir())
      await fetch(`${server.url}/health?token=a-secret-in-a-link`)
      const output = server.output()
      assert.equal(await server.stop(), 0)
      assert.match(output, /"url":"\/health"/)
      assert.ok(!output.includes('a-secret-in-a-link'), output)
    })

    it('refuses a port in use in one line, with exit code 1', async () => {
      const blocker = createServer()
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
      const { port } = blocker.address() as AddressInfo
      try {
        const { code, output } = await refusal(freshDir(), { PORT: String(port) })
        assert.equal(code, 1)
        assert.equal(
          output.trim(),
          `Cannot listen on 127.0.0.1:${port}: the address is already in use (another process listens there): stop it, or choose another port`,
        )
      } finally {
        blocker.close()
      }
    })

    it('refuses a database file it cannot open in one line, with exit code 1', async () => {
      const dir = freshDir()
      const notSqlite = join(dir, 'notes.txt')
      writeFileSync(notSqlite, 'not a database, but a file someone pointed DATABASE_URL at by mistake\n')
      for (const [path, reason] of [
        [notSqlite, 'file is not a database'],
        [dir, 'unable to open database file'],
        [join(notSqlite, 'tessera.db'), 'EEXIST'],
      ] as const) {
        const { code, output } = await refusal(dir, { DATABASE_URL: path })
        assert.equal(code, 1, output)
        assert.equal(output.trim().split('\n').length, 1, output)
        assert.match(
          output,
          new RegExp(`^Cannot open the SQLite database ${path} \\(DATABASE_URL\\): .*${reason}`),
        )
      }
      assert.equal(
        existsSync(`${notSqlite}-lock`),
        false,
        'no lock file is left beside a file that is not SQLite',
      )
    })
  })
})
