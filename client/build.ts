// `npm run client:build`: dist/index.js, one ES module for Node 24 and browsers (openapi-fetch bundled in, so a
// page needs nothing else), made by esbuild; and the same module as ../account/tessera-client.js, the account
// page's copy, which is committed (the page needs no build; a test fails when it is stale). Types are the
// sources' (src/*.ts).
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
    // Paths in the bundle's comments are relative to this folder, wherever the build runs from: the same
    // sources give the same bytes (a test compares the account page's copy with a fresh build).
    absWorkingDir: new URL('.', import.meta.url).pathname,
    logLevel: 'warning',
  })
}

/** The account page's copy of the client. */
export const ACCOUNT_PAGE_CLIENT = new URL('../account/tessera-client.js', import.meta.url).pathname

if (import.meta.main) {
  await buildClient()
  await buildClient(ACCOUNT_PAGE_CLIENT)
}
