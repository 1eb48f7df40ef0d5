// examples/resource-server, run as its README says: Tessera with EdDSA, and the example trusting it by URL.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'

const ROOT = resolve(import.meta.dirname, '../..')

function startProcess(script: string, env: Record<string, string>, cwd: string, ready: RegExp) {
  const child = spawn(process.execPath, [join(ROOT, script)], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const url = new Promise<string>((resolveUrl, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = ready.exec(output)
      if (match?.[1]) resolveUrl(match[1])
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}:\n${output}`)))
  })
  return { child, url }
}

function freePort(): Promise<number> {
  return new Promise((resolvePort) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolvePort(port))
    })
  })
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

describe('examples/resource-server', () => {
  const children: ChildProcess[] = []
  let dir: string
  let tessera: string
  let resourceServer: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-example-'))
    // A fixed port, so that the issuer (PUBLIC_URL, from HOST and PORT) is the URL clients use.
    const port = String(await freePort())
    const t = startProcess(
      'src/server.ts',
      { PORT: port, JWT_ALGORITHM: 'EdDSA', LOG_LEVEL: 'info' },
      dir,
      /Server listening at (http:\/\/127\.0\.0\.1:\d+)/,
    )
    children.push(t.child)
    tessera = await t.url
    const rs = startProcess(
      'examples/resource-server/server.ts',
      { TESSERA_URL: tessera, PORT: '0' },
      dir,
      /listening at (http:\/\/127\.0\.0\.1:\d+)/,
    )
    children.push(rs.child)
    resourceServer = await rs.url
  })
  after(() => {
    for (const child of children) child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  })

  it("accepts Tessera's tokens knowing only Tessera's URL, and refuses missing and forged ones", async () => {
    const user = {
      username: 'ada',
      password: 'correct horse battery',
      firstName: 'Ada',
      lastName: 'Lovelace',
    }
    assert.equal((await post(`${tessera}/auth/register`, user)).status, 201)
    const login = await post(`${tessera}/auth/login`, { username: user.username, password: user.password })
    const { access_token } = (await login.json()) as { access_token: string }

    const hello = await fetch(`${resourceServer}/hello`, {
      headers: { authorization: `Bearer ${access_token}` },
    })
    assert.equal(hello.status, 200, await hello.clone().text())
    assert.deepEqual(await hello.json(), {
      hello: 'ada',
      sub: JSON.parse(Buffer.from(access_token.split('.')[1] ?? '', 'base64url').toString()).sub,
      roles: ['user'],
    })

    assert.equal((await fetch(`${resourceServer}/hello`)).status, 401)
    const [h, p, s] = access_token.split('.')
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p ?? '', 'base64url').toString()), roles: ['admin'] }),
    ).toString('base64url')
    const forged = await fetch(`${resourceServer}/hello`, {
      headers: { authorization: `Bearer ${h}.${forgedPayload}.${s}` },
    })
    assert.equal(forged.status, 401)
  })
})
