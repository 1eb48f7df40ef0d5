// Issue 11: in production the server needs PUBLIC_URL, which is its tokens' issuer and decides whether the
// refresh cookie is Secure; without it, both silently came from the listening address. Real processes, each
// in a fresh temporary folder (no developer's .env).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, it } from 'node:test'
import { startServer } from '../helpers/server-process.ts'

const BIN = resolve(import.meta.dirname, '../../bin/tessera.js')
const JWT_SECRET = 'public-url-suite-jwt-secret-0123456789-abcdefghij'

describe('issue 11: PUBLIC_URL in production', () => {
  const dirs: string[] = []
  const freshDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-public-url-'))
    dirs.push(dir)
    return dir
  }
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('the server refuses to start with NODE_ENV=production and no PUBLIC_URL, and says why in one line', async () => {
    const dir = freshDir()
    const env = { NODE_ENV: 'production', HOST: '0.0.0.0', JWT_SECRET, DATABASE_URL: join(dir, 'tessera.db') }
    // A server that does start (the bug) is stopped, and the test fails on what it did.
    const outcome = await startServer({ cwd: dir, env }).then(
      async (server) => {
        await server.stop()
        return `listening:\n${server.output()}`
      },
      (error: Error) => error.message,
    )
    assert.match(outcome, /^server exited with 1:/)
    assert.match(outcome, /PUBLIC_URL must be set with NODE_ENV=production/)
    assert.match(outcome, /issuer/)
    assert.match(outcome, /Secure/)
    assert.ok(!outcome.includes(JWT_SECRET))
    assert.ok(!outcome.includes('    at '), 'a message, not a stack trace')

    const server = await startServer({ cwd: dir, env: { ...env, PUBLIC_URL: 'https://auth.example.com' } })
    try {
      const metadata = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as {
        issuer: string
      }
      assert.equal(metadata.issuer, 'https://auth.example.com')
    } finally {
      await server.stop()
    }
  })

  it('commands that issue no token (`tessera migrate`) run in production without it', async () => {
    const dir = freshDir()
    const child = spawn(process.execPath, [BIN, 'migrate'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DATABASE_URL: join(dir, 'tessera.db') },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    const code = await new Promise((done) => child.once('exit', done))
    assert.equal(code, 0, output)
    assert.match(output, /^Applied 0001-users-and-signing-keys$/m)
  })
})
