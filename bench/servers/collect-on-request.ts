// The bench's `gc` message (bench/lib/processes.ts, collectGarbage): full collections while the server is idle,
// so that every server the requests section compares is measured in the state a long-running server reaches once
// V8 has collected it while idle (bench/README.md, "A full collection while idle"). Needs node --expose-gc.
export function collectOnRequest(): void {
  process.on('message', (message: { type?: string }) => {
    if (message.type !== 'gc') return
    const gc = (globalThis as { gc?: () => void }).gc
    if (!gc) {
      process.send?.({ type: 'gc-failed', message: 'node runs without --expose-gc' })
      return
    }
    // From a timer, not from this handler, which may run from a process.nextTick callback: while a tick object
    // is alive, the collection cannot free what it frees in an idle server.
    // Four: V8 keeps an unused object shape through two full collections (its --retain-maps-for-n-gc) and frees
    // it in the third.
    setTimeout(() => {
      for (let i = 0; i < 4; i++) gc()
      process.send?.({ type: 'collected' })
    }, 100)
  })
}
