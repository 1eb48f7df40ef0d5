#!/usr/bin/env node
// The `tessera` executable. Our sources are TypeScript, which only Node 24+ runs without a build step; when
// an older global node starts this file, it runs itself again with the Node pinned in node_modules.
// Plain JavaScript, and no syntax newer than Node 14, so that any node gets far enough to hand over.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const major = Number(process.versions.node.split('.')[0])

if (major >= 24) {
  const { cli } = await import('../src/cli/main.ts')
  await cli()
} else {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const pinned = ['node_modules/node/bin/node', 'node_modules/.bin/node']
    .map((path) => root + path)
    .find((path) => existsSync(path))
  // The variable stops a loop should the pinned node be old too.
  if (!pinned || process.env.TESSERA_REEXEC) {
    console.error(`tessera needs Node 24 or newer, and this is ${process.version}. Run \`npm install\` in`)
    console.error(`${root} to fetch the pinned Node, or put Node 24 first on PATH.`)
    process.exit(1)
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, TESSERA_REEXEC: '1' },
  })
  // Ctrl-C and Ctrl-\ already reach the child, which is in the terminal's foreground process group with us:
  // forwarding them would deliver them twice, and a second SIGINT ends `serve` before it has shut down.
  // Stay alive and let the child decide; pass on the signals a supervisor sends to our pid alone.
  for (const signal of ['SIGINT', 'SIGQUIT']) process.on(signal, () => {})
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => {
    if (signal) {
      // Die of the same signal, so that the shell sees what the child saw (130 for Ctrl-C).
      process.removeAllListeners(signal)
      process.kill(process.pid, signal)
    }
    process.exit(code ?? 1)
  })
}
