// What the production build (scripts/build.ts) is made from, and whether dist/node/ was made from exactly that:
// one place for both sides, the build that writes the stamp and bin/start.js that reads it. The stamp holds a
// SHA-256 of the inputs' paths and contents, not a time: a copy that keeps old times (rsync -a, tar, cp -p), an
// edit within the same second, or a clock that was ahead cannot make a stale build look fresh, nor a fresh one
// stale. Reading the inputs takes about 20 ms. Plain JavaScript, imported by bin/start.js before anything else.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const OUT_DIR = `${ROOT}dist/node/`
export const STAMP = `${OUT_DIR}build-stamp.json`

// npm rewrites node_modules/.package-lock.json at every install, so a change of dependencies counts too.
const INPUTS = [
  'src',
  'scripts/build.ts',
  'bin/build-state.js',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'node_modules/.package-lock.json',
]

/** The files under `path` (relative to ROOT), sorted; none when it does not exist. */
function filesUnder(path) {
  let stats
  try {
    stats = statSync(ROOT + path)
  } catch {
    return []
  }
  if (!stats.isDirectory()) return [path]
  return readdirSync(ROOT + path)
    .sort()
    .flatMap((entry) => filesUnder(`${path}/${entry}`))
}

/** SHA-256 over every input file's path and contents. */
export function inputsDigest() {
  const hash = createHash('sha256')
  for (const file of INPUTS.flatMap(filesUnder)) {
    hash.update(`${file}\0`)
    hash.update(readFileSync(ROOT + file))
    hash.update('\0')
  }
  return hash.digest('hex')
}

/** The stamp the last build wrote: `{ inputs, files }`, or undefined when there is none (or it is unreadable). */
export function readStamp() {
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8'))
  } catch {
    return undefined
  }
}

/** Whether dist/node/ holds a build of the inputs as they are now. */
export const isFresh = () => readStamp()?.inputs === inputsDigest()
