// Expand/contract, tested (issue 17, point 5): the previous release's server (extracted from git at
// PREVIOUS_RELEASE) and this release's, side by side on one database that this release migrated, as during a
// rolling upgrade or after a rollback. Run once per database, SQLite and PostgreSQL (`npm test`'s operations run).
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { TEST_ENV } from '../helpers/build-test-app.ts'
import { call, signUp, TEST_PASSWORD } from '../helpers/http-client.ts'
import { type ServerProcess, startServer } from '../helpers/server-process.ts'
import { createTestDatabase, TEST_POSTGRES_URL, type TestDatabase } from '../helpers/test-database.ts'
import { PREVIOUS_RELEASE } from './previous-release.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const BIN = join(ROOT, 'bin/tessera.js')

/**
 * The previous release's source tree in a temporary folder, running on this checkout's node_modules: a package
 * it imports that this release dropped stays a devDependency so that it can (@fastify/cookie, dropped by 1ec7491).
 */
function extractPreviousRelease(into: string): string {
  const found = spawnSync('git', ['-C', ROOT, 'cat-file', '-e', `${PREVIOUS_RELEASE}^{commit}`])
  if (found.status !== 0) {
    throw new Error(
      `The previous release (commit ${PREVIOUS_RELEASE}) is not in this clone, shallow perhaps: fetch the full history (git fetch --unshallow) to run the upgrade test`,
    )
  }
  const tree = join(into, 'previous')
  const archived = spawnSync(
    'bash',
    [
      '-o',
      'pipefail',
      '-c',
      `mkdir "$2" && git -C "$1" archive "$3" | tar -x -C "$2"`,
      '-',
      ROOT,
      tree,
      PREVIOUS_RELEASE,
    ],
    { encoding: 'utf8' },
  )
  assert.equal(archived.status, 0, archived.stderr)
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))
  return tree
}

function migrateWithThisRelease(env: Record<string, string>, cwd: string): Promise<void> {
  const child = spawn(process.execPath, [BIN, 'migrate'], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  return new Promise((resolveRun, reject) =>
    child.on('close', (code) =>
      code === 0 ? resolveRun() : reject(new Error(`tessera migrate: ${stderr}`)),
    ),
  )
}

const BACKENDS: { name: string; skip: string | false; database(dir: string): Promise<TestDatabase> }[] = [
  {
    name: 'SQLite',
    skip: false,
    database: async (dir) => ({ url: join(dir, 'tessera.db'), drop: async () => {} }),
  },
  {
    name: 'PostgreSQL',
    skip: !TEST_POSTGRES_URL && 'needs TESSERA_TEST_POSTGRES_URL (npm test sets it)',
    database: () => createTestDatabase(),
  },
]

for (const backend of BACKENDS) {
  describe(`the previous release (${PREVIOUS_RELEASE}) beside this one, on a ${backend.name} database this one migrated`, {
    skip: backend.skip,
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-upgrade-'))
    let database: TestDatabase
    let previous: ServerProcess
    let current: ServerProcess

    before(async () => {
      const tree = extractPreviousRelease(dir)
      database = await backend.database(dir)
      const env = {
        ...TEST_ENV,
        PATH: process.env.PATH ?? '',
        LOG_LEVEL: 'info',
        DATABASE_URL: database.url,
        // One issuer for both, as behind one load balancer.
        PUBLIC_URL: 'http://tessera.test',
      }
      await migrateWithThisRelease(env, dir)
      // One after the other: the first makes the signing key, the second finds it.
      previous = await startServer({ server: join(tree, 'src/server.ts'), cwd: tree, env })
      current = await startServer({ cwd: dir, env })
    })

    after(async () => {
      await Promise.all([previous?.stop(), current?.stop()])
      await database?.drop()
      rmSync(dir, { recursive: true, force: true })
    })

    /** Signs up on `from`, then on `to`: its access token works, it logs in, and both refresh tokens refresh. */
    async function crossOver(from: ServerProcess, to: ServerProcess) {
      const { username, access, refresh } = await signUp(from.url)
      assert.equal((await call(to.url, 'GET', '/auth/me', { token: access })).status, 200)
      const login = await call(to.url, 'POST', '/auth/login', { body: { username, password: TEST_PASSWORD } })
      assert.equal(login.status, 200, JSON.stringify(login.body))
      for (const token of [refresh, login.body.refresh_token]) {
        const refreshed = await call(to.url, 'POST', '/auth/refresh', { body: { refresh_token: token } })
        assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body))
        assert.equal(
          (await call(from.url, 'GET', '/auth/me', { token: refreshed.body.access_token })).status,
          200,
        )
      }
    }

    it('a user registered on the previous release logs in and refreshes on this one', () =>
      crossOver(previous, current))

    it('a user registered on this release logs in and refreshes on the previous one', () =>
      crossOver(current, previous))
  })
}
