// `npm start` and the systemd unit: the server from the production build in dist/node/ (scripts/build.ts), which
// starts in a fraction of the time and memory of the TypeScript sources (docs/decisions/0018-production-build.md).
// A build older than what it is made from (a `git pull`, an edited file) is made again first, so what runs is
// never stale; where it cannot be (a read-only install, esbuild missing), the sources run instead, and stderr
// says why. Plain JavaScript: loading the TypeScript stripper is part of what the build saves.
import { spawnSync } from 'node:child_process'
import cluster from 'node:cluster'
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const STAMP = `${ROOT}dist/node/build-stamp.json`
// What the build is made from. npm rewrites node_modules/.package-lock.json at every install, so a change of
// dependencies counts too; a directory's time changes when a file in it is added, removed or renamed.
const INPUTS = [
  'src',
  'scripts/build.ts',
  'package.json',
  'package-lock.json',
  'node_modules/.package-lock.json',
]

const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  console.error(`Tessera needs Node 24 or newer, and this is ${process.version}: run it with npm start.`)
  process.exit(1)
}

/** The newest modification time under `path`, in ms; 0 when it does not exist. */
function newest(path) {
  let stats
  try {
    stats = statSync(path)
  } catch {
    return 0
  }
  if (!stats.isDirectory()) return stats.mtimeMs
  let latest = stats.mtimeMs
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(`${path}/${entry}`))
  return latest
}

const isFresh = () => newest(STAMP) > Math.max(...INPUTS.map((input) => newest(ROOT + input)))

/** Whether the build can be written: not under the systemd unit, where the install is read-only (EROFS). */
function writable() {
  try {
    accessSync(existsSync(`${ROOT}dist`) ? `${ROOT}dist` : ROOT, constants.W_OK)
    return true
  } catch {
    return false
  }
}

// A cluster's workers run this file again: only the primary builds, before any worker starts.
if (!isFresh() && cluster.isPrimary && writable()) {
  const build = spawnSync(process.execPath, [`${ROOT}scripts/build.ts`], { stdio: 'inherit' })
  if (build.status !== 0) console.error('tessera: the production build failed (above)')
}

if (isFresh()) {
  await import('../dist/node/server.js')
} else {
  console.error(
    'tessera: dist/node/ is missing or older than the sources, and could not be made: running the sources ' +
      '(slower to start, more memory). Run `npm run build` in the install directory.',
  )
  const { serve } = await import('../src/server.ts')
  await serve()
}
