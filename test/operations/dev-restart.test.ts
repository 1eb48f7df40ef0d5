// `npm run dev` restarts the server on every change under src/, however the change is written: an editor's
// atomic save (a new file renamed over the old), an edit after that (the old inode is gone: a watcher of the
// file alone misses it, as `node --watch-path` did), a file deleted and written again, a new file, and a
// `git checkout` that changes several files at once. Run on a copy of src/, so that this checkout is never
// touched. Issue 17, point 6.
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'

const ROOT = resolve(import.meta.dirname, '../..')
const STARTED = /Server listening at/g

describe('npm run dev', { timeout: 180_000 }, () => {
  let dir: string
  let dev: ChildProcess
  let output = ''
  const starts = () => output.match(STARTED)?.length ?? 0
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' })

  /** Runs `change`, then waits for the server to have started once more than before it. */
  async function restartsAfter(change: () => void) {
    const before = starts()
    change()
    const deadline = Date.now() + 30_000
    while (starts() <= before) {
      if (Date.now() > deadline) assert.fail(`no restart within 30 s; output:\n${output.slice(-2000)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    // The watcher settles before the next change, as it would between two saves by hand.
    await new Promise((r) => setTimeout(r, 500))
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-dev-'))
    cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true })
    cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
    git('init', '--quiet', '--initial-branch=main')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'add', 'src')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '-m', 'base')
    dev = spawn('npm', ['run', 'dev'], {
      cwd: dir,
      // Its own process group: nodemon and the server it runs are stopped together below.
      detached: true,
      env: { PATH: process.env.PATH ?? '', PORT: '0', DATABASE_URL: join(dir, 'dev.db'), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    dev.stdout?.on('data', (chunk) => {
      output += chunk
    })
    dev.stderr?.on('data', (chunk) => {
      output += chunk
    })
    await restartsAfter(() => {})
  })

  after(() => {
    if (dev?.pid) {
      try {
        process.kill(-dev.pid, 'SIGKILL')
      } catch {}
    }
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const file = () => join(dir, 'src/lib/clock.ts')

  it('restarts on an atomic save (a temporary file renamed over the source)', async () => {
    await restartsAfter(() => {
      const temporary = join(dir, 'src/lib/.clock.ts.swp')
      writeFileSync(temporary, `${readFileSync(file(), 'utf8')}// saved atomically\n`)
      renameSync(temporary, file())
    })
  })

  it('restarts on a plain write to the file that an atomic save replaced', async () => {
    await restartsAfter(() => appendFileSync(file(), '// written in place\n'))
  })

  it('restarts on a file deleted and written again, and on a later write to it', async () => {
    const ids = join(dir, 'src/lib/ids.ts')
    const content = readFileSync(ids, 'utf8')
    await restartsAfter(() => {
      unlinkSync(ids)
      writeFileSync(ids, content)
    })
    await restartsAfter(() => appendFileSync(ids, '// again\n'))
  })

  it('restarts on a new file in a new folder, and on a write to it', async () => {
    const added = join(dir, 'src/extra/added.ts')
    await restartsAfter(() => {
      cpSync(join(dir, 'src/lib/ids.ts'), added)
    })
    await restartsAfter(() => appendFileSync(added, '// edited\n'))
  })

  it('restarts on a git checkout that changes several files, and once on the way back', async () => {
    git('checkout', '--quiet', '-b', 'topic')
    await restartsAfter(() => {
      appendFileSync(join(dir, 'src/lib/clock.ts'), '// on topic\n')
      appendFileSync(join(dir, 'src/lib/logger.ts'), '// on topic\n')
    })
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '-am', 'topic')
    await new Promise((r) => setTimeout(r, 2000))
    await restartsAfter(() => git('checkout', '--quiet', 'main'))
    await restartsAfter(() => git('checkout', '--quiet', 'topic'))
  })
})

describe("the README's command for one test file", () => {
  it('runs that file on the project’s Node, without the rest of the suite', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const command = /\| `(node_modules\/\.bin\/node --test test\/e2e\/auth\.test\.ts)` \|/.exec(readme)?.[1]
    assert.ok(command, 'the README documents it')
    // The documented command as written, on a small file of the suite: PATH's own node cannot run .ts at all.
    const output = execFileSync(
      'bash',
      ['-c', command.replace('test/e2e/auth.test.ts', 'test/unit/totp.test.ts')],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '' },
        encoding: 'utf8',
      },
    )
    assert.match(output, /pass [1-9]/)
    assert.match(output, /fail 0/)
  })
})
