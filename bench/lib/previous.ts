// An earlier commit of Tessera, served beside this code in the same run: checked out in a git worktree in a temp
// dir (node_modules a symlink to this repo's) and served by this bench's own server script, copied into the
// worktree's bench/servers/ so that it runs against the old src/, and built as this code's is (./build.ts). The
// worktree is removed when the bench ends, also after a failure.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { buildServers } from './build.ts'
import type { Context } from './context.ts'
import { type ServerProcess, startServer } from './processes.ts'
import { tesseraEnv } from './tessera.ts'

const repo = join(import.meta.dirname, '..', '..')
/** What the bench's server script needs of bench/servers/ (tessera-server.ts and what it imports there). */
const SERVER_FILES = ['tessera-server.ts', 'bench-response.ts', 'collect-on-request.ts']

function git(...args: string[]): string {
  const result = spawnSync('git', args, { cwd: repo, encoding: 'utf8' })
  if (result.error || result.status !== 0)
    throw new Error(`git ${args.join(' ')}: ${result.error?.message ?? result.stderr.trim()}`)
  return result.stdout.trim()
}

export type PreviousTree = {
  /** The commit checked out, abbreviated. */
  commit: string
  /** A Tessera process of that commit, with the bench's environment and `env` on top, pinned like the others. */
  start(name: string, file: string, env: Record<string, string>): Promise<ServerProcess>
  /** Stops its servers and removes the worktree (also done at cleanup). */
  remove(): Promise<void>
}

export function checkOutPrevious(ctx: Context, ref: string): PreviousTree {
  const commit = git('rev-parse', '--short', `${ref}^{commit}`)
  const parent = mkdtempSync(join(os.tmpdir(), 'tessera-previous-'))
  const tree = join(parent, 'tree')
  const servers: ServerProcess[] = []
  let removed = false
  const remove = async () => {
    if (removed) return
    removed = true
    await Promise.allSettled(servers.map((server) => server.stop()))
    if (existsSync(tree)) {
      const result = spawnSync('git', ['worktree', 'remove', '--force', tree], {
        cwd: repo,
        encoding: 'utf8',
      })
      if (result.status !== 0) console.error(`bench: git worktree remove ${tree}: ${result.stderr.trim()}`)
    }
    rmSync(parent, { recursive: true, force: true })
  }
  ctx.onCleanup(remove)
  git('worktree', 'add', '--detach', tree, commit)
  symlinkSync(join(repo, 'node_modules'), join(tree, 'node_modules'), 'dir')
  mkdirSync(join(tree, 'bench', 'servers'), { recursive: true })
  for (const file of SERVER_FILES)
    cpSync(join(repo, 'bench', 'servers', file), join(tree, 'bench', 'servers', file))

  let built: Promise<string[]> | undefined
  return {
    commit,
    async start(name, file, env) {
      const { settings } = ctx
      built ??= buildServers(tree, [join(tree, 'bench', 'servers', 'tessera-server.ts')])
      const [script = ''] = await built
      const server = await startServer(name, script, {
        cpus: settings.serverCpus,
        start: { type: 'start', env: { ...tesseraEnv(ctx.tempDir, file, settings.logLevel), ...env } },
        execArgv: settings.serverExecArgv,
      })
      servers.push(server)
      return server
    },
    remove,
  }
}
