// deploy/nginx.conf in front of two Tessera processes over one PostgreSQL and one Redis, as an operator
// installs it (docs/operations.md): Debian's nginx runs the file with only its ports, certificate paths, log
// path and upstream addresses replaced, under a self-signed certificate made here. Issue 17, point 2.
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { TEST_PASSWORD } from '../helpers/http-client.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import {
  createTestDatabase,
  TEST_POSTGRES_URL,
  TEST_REDIS_URL,
  type TestDatabase,
} from '../helpers/test-database.ts'

const NGINX = '/usr/sbin/nginx'
const SITE = resolve(import.meta.dirname, '../../deploy/nginx.conf')
const SERVER_NAME = 'auth.example.com'

/** A port free on 127.0.0.1 now (nginx binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer().once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolvePort(port))
    })
  })
}

/** `text` with `from` replaced by `to`, which must occur exactly `times` times: the test fails loudly, rather
 * than running some other configuration, when deploy/nginx.conf changes shape. */
function replaceExactly(text: string, from: string, to: string, times = 1): string {
  const found = text.split(from).length - 1
  assert.equal(found, times, `deploy/nginx.conf should contain "${from}" ${times} time(s), found ${found}`)
  return text.replaceAll(from, to)
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolveConnect(true)
    })
    socket.once('error', () => resolveConnect(false))
  })
}

// biome-ignore lint/suspicious/noExplicitAny: a test reads the fields it expects and asserts on them.
type Reply = { status: number; headers: http.IncomingHttpHeaders; body: any }

describe('deploy/nginx.conf in front of two instances', { timeout: 60_000 }, () => {
  let dir: string
  let database: TestDatabase
  let a: ServerProcess
  let b: ServerProcess
  let nginx: ChildProcess | undefined
  let nginxOutput = ''
  let httpPort: number
  let httpsPort: number
  let ca: Buffer

  /** A request over HTTPS (HTTP/1.1) to nginx, sent from the loopback address `from`. */
  function request(
    from: string,
    method: string,
    path: string,
    options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
    return new Promise((resolveReply, reject) => {
      const outgoing = https.request(
        {
          host: '127.0.0.1',
          port: httpsPort,
          localAddress: from,
          servername: SERVER_NAME,
          ca,
          agent: false,
          method,
          path,
          headers: {
            host: SERVER_NAME,
            ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
            ...options.headers,
          },
        },
        (response) => {
          let text = ''
          response.setEncoding('utf8')
          response.on('data', (chunk: string) => {
            text += chunk
          })
          response.on('end', () => {
            const json = /json/.test(response.headers['content-type'] ?? '')
            resolveReply({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: json && text ? JSON.parse(text) : text,
            })
          })
        },
      )
      outgoing.once('error', reject)
      outgoing.end(payload)
    })
  }

  before(async () => {
    assert.ok(TEST_POSTGRES_URL && TEST_REDIS_URL, 'npm test runs this with PostgreSQL and Redis')
    for (const [tool, versionFlag] of [
      [NGINX, '-v'],
      ['openssl', 'version'],
    ] as const) {
      try {
        execFileSync(tool, [versionFlag], { stdio: 'ignore' })
      } catch {
        assert.fail(`${tool} is needed (apt-get install nginx openssl; .ci/run installs them)`)
      }
    }
    dir = mkdtempSync(join(tmpdir(), 'tessera-nginx-'))
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
        ...['-subj', `/CN=${SERVER_NAME}`, '-addext', `subjectAltName=DNS:${SERVER_NAME}`],
        ...['-keyout', join(dir, 'privkey.pem'), '-out', join(dir, 'fullchain.pem')],
      ],
      { stdio: 'ignore' },
    )
    ca = readFileSync(join(dir, 'fullchain.pem'))

    database = await createTestDatabase()
    const env = {
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `test:${randomUUID()}:`,
      PUBLIC_URL: `https://${SERVER_NAME}`,
      // As docs/operations.md says: nginx's address as the instances see it, and only that.
      TRUST_PROXY: '127.0.0.1',
      RATE_LIMIT_LOGIN_PER_IP: '3',
    }
    ;[a, b] = await Promise.all([startServer({ env }), startServer({ env })])

    httpPort = await freePort()
    httpsPort = await freePort()
    let site = readFileSync(SITE, 'utf8')
    site = replaceExactly(site, 'listen 80;', `listen 127.0.0.1:${httpPort};`)
    site = replaceExactly(site, 'listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`)
    // IPv4 loopback only: this test's clients use it, and a CI container may have no IPv6.
    site = replaceExactly(site, 'listen [::]:80;', '')
    site = replaceExactly(site, 'listen [::]:443 ssl http2;', '')
    site = replaceExactly(site, '/etc/ssl/tessera/', `${dir}/`, 2)
    site = replaceExactly(site, '/var/log/nginx/', `${dir}/`)
    site = replaceExactly(site, '10.0.0.11:8000', new URL(a.url).host)
    site = replaceExactly(site, '10.0.0.12:8000', new URL(b.url).host)
    // What Debian's /etc/nginx/nginx.conf gives a site, with every path in the temp dir. As root (CI),
    // workers would switch to nobody, who cannot enter the 0700 temp dir where they buffer bodies: `user
    // root` here only; the production nginx keeps Debian's www-data.
    const main = `
      ${process.getuid?.() === 0 ? 'user root;' : ''}
      daemon off;
      worker_processes 1;
      pid ${dir}/nginx.pid;
      error_log stderr warn;
      events { worker_connections 256; }
      http {
        client_body_temp_path ${dir}/client_body;
        proxy_temp_path ${dir}/proxy;
        fastcgi_temp_path ${dir}/fastcgi;
        uwsgi_temp_path ${dir}/uwsgi;
        scgi_temp_path ${dir}/scgi;
        access_log off;
        ${site}
      }`
    writeFileSync(join(dir, 'nginx.conf'), main)

    // -e: the error log before the configuration is read, which would otherwise be /var/log/nginx's.
    nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    nginx.stdout?.on('data', (chunk) => {
      nginxOutput += chunk
    })
    nginx.stderr?.on('data', (chunk) => {
      nginxOutput += chunk
    })
    const started = performance.now()
    while (!(await canConnect(httpsPort))) {
      if (nginx.exitCode !== null) assert.fail(`nginx exited with ${nginx.exitCode}:\n${nginxOutput}`)
      if (performance.now() - started > 10_000) assert.fail(`nginx does not listen:\n${nginxOutput}`)
      await sleep(50)
    }
  })

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolveExit) => nginx?.once('exit', resolveExit))
      nginx.kill('SIGTERM')
      const killer = setTimeout(() => nginx?.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(killer)
    }
    await Promise.all([a?.stop(), b?.stop()])
    await database?.drop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  async function signUpFrom(from: string) {
    const username = `u${randomUUID().slice(0, 8)}`
    const created = await request(from, 'POST', '/auth/register', {
      body: { username, password: TEST_PASSWORD, firstName: 'Ada', lastName: 'Lovelace' },
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    return username
  }

  it("counts per-address rate limits by the client's address, which a client-sent X-Forwarded-For cannot change", async () => {
    const username = await signUpFrom('127.0.0.4')
    const wrong = (from: string, headers?: Record<string, string>) =>
      request(from, 'POST', '/auth/login', { body: { username, password: 'not the password' }, headers })
    // RATE_LIMIT_LOGIN_PER_IP is 3, counted in Redis across both instances.
    for (let i = 0; i < 3; i++) assert.equal((await wrong('127.0.0.2')).status, 401)
    const limited = await wrong('127.0.0.2')
    assert.equal(limited.status, 429)
    assert.equal(limited.body.code, 'rate_limited')
    const spoofed = await wrong('127.0.0.2', { 'x-forwarded-for': '198.51.100.7' })
    assert.equal(spoofed.status, 429, 'an address the client claims is not believed')

    const other = await request('127.0.0.3', 'POST', '/auth/login', {
      body: { username, password: TEST_PASSWORD },
    })
    assert.equal(other.status, 200, 'another address has its own count')
  })

  it("records the client's address in the session list, not nginx's nor one the client claims", async () => {
    const username = await signUpFrom('127.0.0.4')
    const login = await request('127.0.0.3', 'POST', '/auth/login', {
      body: { username, password: TEST_PASSWORD },
      headers: { 'x-forwarded-for': '198.51.100.7' },
    })
    assert.equal(login.status, 200, JSON.stringify(login.body))
    const list = await request('127.0.0.4', 'GET', '/auth/sessions', { token: login.body.access_token })
    assert.equal(list.status, 200)
    const current = list.body.sessions.find((session: { current: boolean }) => session.current)
    assert.equal(current.ip, '127.0.0.3')
  })

  it('gives, under an https PUBLIC_URL, a Secure __Host- refresh cookie and Strict-Transport-Security', async () => {
    const username = await signUpFrom('127.0.0.4')
    const login = await request('127.0.0.4', 'POST', '/auth/login', {
      body: { username, password: TEST_PASSWORD, refresh_token_delivery: 'cookie' },
    })
    assert.equal(login.status, 200, JSON.stringify(login.body))
    const cookie = (login.headers['set-cookie'] ?? []).find((line) =>
      line.startsWith('__Host-tessera_refresh'),
    )
    assert.ok(cookie, `a __Host- refresh cookie among ${login.headers['set-cookie']}`)
    assert.match(cookie, /; Secure/)
    assert.match(cookie, /; HttpOnly/)
    assert.match(cookie, /; Path=\/(;|$)/)
    assert.equal(login.headers['strict-transport-security'], 'max-age=31536000', 'once, from Tessera')
  })

  it('redirects plain HTTP to the https URL of the configured name', async () => {
    const answer = await new Promise<http.IncomingMessage>((resolveAnswer, reject) => {
      http
        .get({
          host: '127.0.0.1',
          port: httpPort,
          path: '/auth/sessions?page=2',
          headers: { host: 'evil.test' },
        })
        .once('response', (response) => {
          response.resume()
          resolveAnswer(response)
        })
        .once('error', reject)
    })
    assert.equal(answer.statusCode, 301)
    assert.equal(answer.headers.location, `https://${SERVER_NAME}/auth/sessions?page=2`)
  })

  it('speaks HTTP/2 to a client that offers it (ALPN)', async () => {
    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, { ca, servername: SERVER_NAME })
    try {
      await new Promise((resolveConnect, reject) =>
        session.once('connect', resolveConnect).once('error', reject),
      )
      assert.equal(session.alpnProtocol, 'h2')
      const status = await new Promise((resolveStatus, reject) => {
        const stream = session.request({ ':path': '/health', ':authority': SERVER_NAME })
        stream.once('response', (headers) => resolveStatus(headers[':status']))
        stream.once('error', reject)
        stream.resume()
      })
      assert.equal(status, 200)
    } finally {
      session.close()
    }
  })

  it('routes around a backend that was killed: every request keeps succeeding through the other', async () => {
    const served = (server: ServerProcess) => server.output().split('incoming request').length - 1
    const servedBefore = [served(a), served(b)]
    for (let i = 0; i < 4; i++) assert.equal((await request('127.0.0.5', 'GET', '/health')).status, 200)
    assert.ok(
      served(a) > (servedBefore[0] ?? 0) && served(b) > (servedBefore[1] ?? 0),
      'both instances serve',
    )

    const username = await signUpFrom('127.0.0.5')
    const login = await request('127.0.0.5', 'POST', '/auth/login', {
      body: { username, password: TEST_PASSWORD },
    })
    assert.equal(login.status, 200, JSON.stringify(login.body))
    const exited = new Promise((resolveExit) => b.child.once('exit', resolveExit))
    b.child.kill('SIGKILL')
    await exited
    let refreshToken: string = login.body.refresh_token
    for (let i = 0; i < 6; i++) {
      // A POST too: a refused connection sent nothing, so nginx may pass it on.
      const refreshed = await request('127.0.0.5', 'POST', '/auth/refresh', {
        body: { refresh_token: refreshToken },
      })
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body))
      refreshToken = refreshed.body.refresh_token
      const me = await request('127.0.0.5', 'GET', '/auth/me', { token: refreshed.body.access_token })
      assert.equal(me.status, 200)
    }
  })
})
