// The server as a user starts it: a real process, in a fresh directory, with nothing configured.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, it } from 'node:test'
import { call } from '../helpers/http-client.ts'
import { startServer } from '../helpers/server-process.ts'

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
})
