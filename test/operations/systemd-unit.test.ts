// deploy/tessera.service and deploy/tessera.env as an operator installs them (docs/operations.md). No systemd
// runs here, so the unit is checked in two halves: `systemd-analyze verify` reads it as systemd would, and its
// command starts Tessera with its environment and the example settings file. Both use a copy of the unit with
// only the install path (/opt/tessera) rewritten to this checkout and the state directory to a temp dir: the
// verifier wants the command to exist. In the operations run, which runs once: it needs no database of its own.
// Issue 17, point 2.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parseEnv, promisify } from 'node:util'

const ROOT = resolve(import.meta.dirname, '../..')
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze'

/** The values of `key=` lines in the unit, in order (a key may be given several times). */
const valuesOf = (unit: string, key: string) =>
  [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((match) => match[1] ?? '')

describe('deploy/tessera.service', { timeout: 30_000 }, () => {
  let dir: string
  let unit: string

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-unit-'))
    const original = readFileSync(join(ROOT, 'deploy/tessera.service'), 'utf8')
    assert.ok(original.includes('/opt/tessera/'), 'the unit names the documented install path')
    unit = original.replaceAll('/opt/tessera/', `${ROOT}/`).replaceAll('/var/lib/tessera', join(dir, 'state'))
    writeFileSync(join(dir, 'tessera.service'), unit)
  })

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('passes `systemd-analyze verify` without a warning', async () => {
    let result: { stdout: string; stderr: string }
    try {
      result = await promisify(execFile)(SYSTEMD_ANALYZE, ['verify', join(dir, 'tessera.service')])
    } catch (error) {
      const { code, stdout, stderr } = error as { code?: unknown; stdout?: string; stderr?: string }
      if (code === 'ENOENT') assert.fail(`${SYSTEMD_ANALYZE} is needed (apt-get install systemd)`)
      assert.fail(`systemd-analyze verify failed:\n${stdout}${stderr}`)
    }
    // An unknown or misspelt setting is only a warning to systemd, which then ignores it: refuse it here.
    assert.equal(`${result.stdout}${result.stderr}`.trim(), '')
  })

  it('starts Tessera in production with its command, its environment and the example settings', async () => {
    const [execStart] = valuesOf(unit, 'ExecStart')
    const [workingDirectory] = valuesOf(unit, 'WorkingDirectory')
    assert.ok(execStart && workingDirectory)
    const env: Record<string, string> = {}
    for (const line of valuesOf(unit, 'Environment')) {
      for (const pair of line.split(/\s+/)) {
        const [name = '', value = ''] = pair.split(/=(.*)/)
        env[name] = value
      }
    }
    // deploy/tessera.env as an operator fills it in: the two secrets replaced, and the state directory where
    // the unit's copy has it.
    const settings = readFileSync(join(ROOT, 'deploy/tessera.env'), 'utf8')
      .replace('JWT_SECRET=replace-me', `JWT_SECRET=${randomBytes(64).toString('base64')}`)
      .replace(
        'KEY_ENCRYPTION_SECRET=replace-me',
        `KEY_ENCRYPTION_SECRET=${randomBytes(48).toString('base64')}`,
      )
      .replaceAll('/var/lib/tessera', join(dir, 'state'))
    writeFileSync(join(dir, 'tessera.env'), settings)
    // After Environment=, as systemd reads them: the file's values win.
    Object.assign(env, parseEnv(settings))
    // A free port, rather than the unit's 8000, which something else on a CI machine may hold.
    env.PORT = '0'
    // StateDirectory: systemd creates it before the start; so does this test.
    mkdirSync(workingDirectory, { recursive: true })

    const [command = '', ...args] = execStart.split(/\s+/)
    const child = spawn(command, args, {
      cwd: workingDirectory,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    try {
      await new Promise<void>((resolveStart, reject) => {
        const onData = (chunk: Buffer) => {
          output += chunk
          if (/Server listening at http:\/\/127\.0\.0\.1:\d+/.test(output)) resolveStart()
        }
        child.stdout.on('data', onData)
        child.stderr.on('data', onData)
        child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)))
      })
      assert.ok(
        readFileSync(join(workingDirectory, 'tessera.db')).length > 0,
        'the database in the state dir',
      )
      // deploy/tessera-admin, as docs/operations.md runs it while the service serves: on its database.
      const admin = readFileSync(join(ROOT, 'deploy/tessera-admin'), 'utf8')
        .replace('/etc/tessera/tessera.env', join(dir, 'tessera.env'))
        .replaceAll('/opt/tessera/', `${ROOT}/`)
      writeFileSync(join(dir, 'tessera-admin'), admin, { mode: 0o755 })
      const backup = join(dir, 'backup.db')
      const made = await promisify(execFile)(join(dir, 'tessera-admin'), ['backup', backup], {
        env: { PATH: process.env.PATH ?? '' },
      })
      assert.match(
        made.stdout,
        new RegExp(`^Wrote ${backup} .*a backup of ${join(workingDirectory, 'tessera.db')}`),
      )
      // What `systemctl stop` does: SIGTERM, and a clean exit well within TimeoutStopSec.
      child.removeAllListeners('exit')
      const exited = new Promise((resolveExit) => child.once('exit', resolveExit))
      child.kill('SIGTERM')
      assert.equal(await exited, 0, output)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  })
})
