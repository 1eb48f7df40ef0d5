// An outage fails every request that touches the broken service; its log should say so, not repeat it
// thousands of times a second.

/** `report`, called at most once per `intervalMs`; the calls in between are dropped. */
export function reportAtMostEvery<T>(intervalMs: number, report: (value: T) => void): (value: T) => void {
  let lastAt = Number.NEGATIVE_INFINITY
  return (value) => {
    const now = Date.now()
    if (now - lastAt < intervalMs) return
    lastAt = now
    report(value)
  }
}
