// The bench's servers are built as `npm start`'s server is (scripts/build.ts: esbuild, the same options), so
// that the bench measures what ships: no TypeScript stripped at run time, a few bundled modules. Bare Fastify is
// built the same way, so that neither side pays a cost the other does not. BENCH_SOURCES=1 runs the sources of
// both instead (what `npm run dev` and the tests run).
import { basename, join } from 'node:path'
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
