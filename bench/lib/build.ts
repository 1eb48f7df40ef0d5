// The bench's servers are built as `npm start`'s server is (scripts/build.ts: esbuild, the same options), so
// that the bench measures what ships: no TypeScript stripped at run time, a few bundled modules. Bare Fastify is
// built the same way, so that neither side pays a cost the other does not. BENCH_SOURCES=1 runs the sources of
// both instead (what `npm run dev` and the tests run).
import { readFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { bundle } from '../../scripts/build.ts'

export const fromSources = process.env.BENCH_SOURCES === '1'

/**
 * The scripts to run for the server files `files` of a tree (this repository, or a previous release's worktree):
 * each bundled into `<root>/dist/bench/` (two levels below the root, as the production build is), or the files
 * themselves with BENCH_SOURCES=1.
 */
export async function buildServers(root: string, files: string[]): Promise<string[]> {
  if (fromSources) return files
  const outDir = join(root, 'dist', 'bench')
  const entryPoints = files.map((file) => ({ in: file, out: basename(file, '.ts') }))
  await bundle({ entryPoints, outDir })
  return entryPoints.map(({ out }) => join(outDir, `${out}.js`))
}

const ROOT = resolve(import.meta.dirname, '..', '..')

/**
 * What `npm start` runs (package.json's start script, `node [options] <file> [args]`): the node options (V8
 * flags) go to every Tessera process the bench starts, so that it measures the server as it ships.
 */
export function npmStart(): { nodeOptions: string[]; file: string; args: string[] } {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>
  }
  const [program, ...words] = (scripts.start ?? '').split(/\s+/)
  const at = words.findIndex((word) => !word.startsWith('-'))
  if (program !== 'node' || at < 0) {
    throw new Error(`package.json's start script is not "node [options] <file> ...": ${scripts.start}`)
  }
  return { nodeOptions: words.slice(0, at), file: join(ROOT, words[at] ?? ''), args: words.slice(at + 1) }
}
