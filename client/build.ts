// `npm run build -w @tessera/client`: dist/index.js, one ES module for Node 24 and browsers (openapi-fetch
// bundled in, so a page needs nothing else), made by esbuild. Types are the sources' (src/*.ts).
import { build } from 'esbuild'

export async function buildClient(
  outfile = new URL('./dist/index.js', import.meta.url).pathname,
): Promise<void> {
  await build({
    entryPoints: [new URL('./src/index.ts', import.meta.url).pathname],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    outfile,
    logLevel: 'warning',
  })
}

if (import.meta.main) await buildClient()
