// `npm run build` (and `prepare`, at every `npm install` / `npm ci`): the production build that `npm start` and
// the systemd unit run, made by esbuild into dist/node/ (two levels below the root, like the sources in
// src/http/...: the few modules that find a file of the repository by a path relative to their own, such as
// account-page.ts's '../../account/', find it from there too). One entry, server.js (what src/server.ts does when
// run); every dynamic import() stays a chunk of its own, loaded when first used. The command line (bin/tessera.js)
// runs the sources: a command is short, and starts once. docs/decisions/0018-production-build.md says what is
// bundled and why.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { build, type Plugin } from 'esbuild'
import { inputsDigest, OUT_DIR, ROOT, readStamp, STAMP } from '../bin/build-state.js'

// Left to node_modules, loaded as they are: native addons (a .node file per platform), and packages that read
// files next to their own source (swagger-ui's assets). Packages a module loads through createRequire (pg,
// ioredis, the rate limiter's stores: only when configured) are not seen by the bundler, and stay there too.
// prom-client, a CommonJS package our code import()s for its named exports (metrics are off by default): a
// split chunk of a bundled CommonJS module exports only `default`, where Node also gives the named ones, so
// `new AggregatorRegistry()` found undefined (WORKERS with METRICS_PORT failed to start from the build).
const EXTERNAL = ['@node-rs/argon2', '@node-rs/bcrypt', '@fastify/swagger-ui', 'prom-client']

// The entries call serve() and cli() themselves: in a bundle, `import.meta.main` would be true in whichever
// chunk a module lands in when that chunk is an entry, so every module's own check is turned off (define, below).
const ENTRIES: Record<string, string> = {
  server: `import { serve } from ${JSON.stringify(`${ROOT}src/server.ts`)}\nawait serve()\n`,
}

const entries: Plugin = {
  name: 'tessera-entries',
  setup(build) {
    build.onResolve({ filter: /^entry:/ }, (args) => ({ path: args.path.slice(6), namespace: 'entry' }))
    build.onLoad({ filter: /.*/, namespace: 'entry' }, (args) => ({
      contents: ENTRIES[args.path] ?? '',
      loader: 'ts',
      resolveDir: ROOT,
    }))
  },
}

/**
 * Bundles `entryPoints` into `outDir` as the production build does (the same options: what is external, minified,
 * split), each file written atomically; returns the names of the files it wrote. The bench builds its servers with it,
 * so that what it measures is built as what ships.
 */
export async function bundle(options: {
  entryPoints: { in: string; out: string }[]
  outDir: string
  plugins?: Plugin[]
}): Promise<string[]> {
  const result = await build({
    entryPoints: options.entryPoints,
    plugins: options.plugins ?? [],
    absWorkingDir: ROOT,
    outdir: options.outDir,
    // Chunks beside the entries: at the same depth (OUT_DIR, above).
    chunkNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    external: EXTERNAL,
    define: { 'import.meta.main': 'false' },
    // Bundled CommonJS packages call require() for Node's own modules; an ES module has none of its own.
    banner: {
      js: "import { createRequire as __tesseraRequire } from 'node:module';const require = __tesseraRequire(import.meta.url);",
    },
    minify: true,
    sourcemap: 'linked',
    write: false,
    logLevel: 'warning',
  })
  // Each file replaced at once (written beside, then renamed): a server starting, or one already running and
  // loading a chunk on first use, never reads a half-written file. Files of earlier builds are left: a server
  // still running one may yet load its chunks (their names change with their content).
  mkdirSync(options.outDir, { recursive: true })
  for (const file of result.outputFiles) writeAtomically(file.path, file.contents)
  return result.outputFiles.map((file) => basename(file.path))
}

export async function buildProduction(): Promise<void> {
  const started = performance.now()
  // Taken before bundling: a source saved during the build makes the stamp name the older inputs, and the next
  // start builds again, rather than the reverse.
  const inputs = inputsDigest()
  const previous = readStamp()
  const files = await bundle({
    entryPoints: Object.keys(ENTRIES).map((name) => ({ in: `entry:${name}`, out: name })),
    plugins: [entries],
    outDir: OUT_DIR,
  })
  writeAtomically(STAMP, `${JSON.stringify({ builtAt: new Date().toISOString(), inputs, files })}\n`)
  // The build before this one stays (a server still running it may yet load one of its chunks); older ones go.
  const kept = new Set([...files, ...(previous?.files ?? []), basename(STAMP)])
  for (const name of readdirSync(OUT_DIR)) {
    if (!kept.has(name) && !name.startsWith('.')) rmSync(join(OUT_DIR, name), { force: true })
  }
  const ms = Math.round(performance.now() - started)
  const scripts = files.filter((name) => name.endsWith('.js')).length
  console.error(`tessera: built ${scripts} scripts into dist/node/ in ${ms} ms`)
}

function writeAtomically(path: string, contents: string | Uint8Array): void {
  const temporary = `${dirname(path)}/.${process.pid}-${path.slice(path.lastIndexOf('/') + 1)}`
  writeFileSync(temporary, contents)
  renameSync(temporary, path)
}

if (import.meta.main) await buildProduction()
