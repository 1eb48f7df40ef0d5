// `npm start` and the systemd unit: the server from the production build in dist/node/ (scripts/build.ts), which
// starts in a fraction of the time and memory of the TypeScript sources (docs/decisions/0018-production-build.md).
// A build made from other inputs than those now here (a `git pull`, an edited file: bin/build-state.js compares
// their digest) is made again first; where it cannot be (a read-only install, esbuild missing), the sources run
// instead, and stderr says why. Plain JavaScript: loading the TypeScript stripper is part of what the build saves.
import { spawnSync } from 'node:child_process'
import cluster from 'node:cluster'
import { accessSync, constants, existsSync } from 'node:fs'
import { isFresh, ROOT } from './build-state.js'

const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  console.error(`Tessera needs Node 24 or newer, and this is ${process.version}: run it with npm start.`)
  process.exit(1)
}

/** Whether the build can be written: not under the systemd unit, where the install is read-only (EROFS). */
function writable() {
  try {
    accessSync(existsSync(`${ROOT}dist`) ? `${ROOT}dist` : ROOT, constants.W_OK)
    return true
  } catch {
    return false
  }
}

// A cluster's workers run this file again. The primary decides once what every process runs and tells its
// workers through the environment they inherit: a worker replaced after a `git pull` must run what the primary
// and the other workers run (and what the primary migrated for), not decide again.
const DECIDED = 'TESSERA_START_RUNS'
let runs = cluster.isWorker ? process.env[DECIDED] : undefined
if (runs === undefined) {
  // The digest reads every input (about 20 ms): once at a start whose build is fresh, again only after building.
  let fresh = isFresh()
  if (!fresh && writable()) {
    const build = spawnSync(process.execPath, [`${ROOT}scripts/build.ts`], { stdio: 'inherit' })
    if (build.status !== 0) console.error('tessera: the production build failed (above)')
    fresh = isFresh()
  }
  runs = fresh ? 'build' : 'sources'
  if (runs === 'sources') {
    console.error(
      'tessera: dist/node/ is missing or was made from other sources, and could not be made again: running the ' +
        'sources (slower to start, more memory). Run `npm run build` in the install directory (as its owner; ' +
        'for the systemd unit: `sudo npm ci --omit=dev` in /opt/tessera).',
    )
  }
  process.env[DECIDED] = runs
}

if (runs === 'build') {
  await import('../dist/node/server.js')
} else {
  const { serve } = await import('../src/server.ts')
  await serve()
}
