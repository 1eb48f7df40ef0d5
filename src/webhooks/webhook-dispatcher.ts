// The outbox's send side, run by each server process: claims due deliveries under a lease, POSTs them signed,
// records each outcome, and retries with exponential backoff and jitter until WEBHOOK_MAX_ATTEMPTS, when a
// delivery is dead. It sends what this process enqueues at once, and polls for the rest (decision 0013).
import type { WebhooksConfig } from '../config/load-config.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import type { Logger } from '../lib/logger.ts'
import { reportAtMostEvery } from '../lib/report-at-most.ts'
import type { Claim, WebhookDeliveryRepository } from './webhook-delivery.repository.ts'
import { attemptDelivery, createWebhookEndpoint, type WebhookEndpoint } from './webhook-endpoint.ts'
import { filterTakes, type WebhookOutbox } from './webhook-outbox.ts'

export interface WebhookDispatcher {
  /** Starts sending: at once, then whenever this process enqueues, a retry falls due, or the poll comes. */
  start(): void
  /**
   * Stops claiming. Attempts under way may finish for `graceMs`; those still waiting then are abandoned and
   * given back, pending, to be sent by another instance or after a restart. Resolves when nothing is in flight.
   */
  stop(graceMs?: number): Promise<void>
  /** Sends every delivery due now, batch after batch; resolves to how many were attempted. */
  deliverDue(): Promise<number>
}

export type WebhookDispatcherDeps = {
  deliveries: WebhookDeliveryRepository
  outbox: WebhookOutbox
  config: WebhooksConfig
  clock: Clock
  log: Logger
  /** In [0, 1): the jitter. */
  random?: () => number
  /** Every event type there is: a filter that takes none of them (a typo) is warned of at start. */
  eventTypes?: readonly string[]
  /** Told of each attempt's outcome (the metrics). */
  onAttempt?: (outcome: 'delivered' | 'failed' | 'dead') => void
}

const BATCH_SIZE = 10
/** A claim outlives the attempt's timeout by this much: the time to record its outcome. */
const LEASE_MARGIN_SECONDS = 5
/** Below the server's 10 s shutdown deadline, with room to give abandoned claims back. */
export const STOP_GRACE_MS = 3000
const EXPIRE_EVERY_MS = 60_000
const PURGE_EVERY_MS = 3_600_000
// A delivery this process enqueued is in a transaction that has not committed yet when the dispatcher hears of
// it: first looked for after the first of these delays (by then its transaction has usually committed, and the
// deliveries of requests close together go in one pass), again after each of the next until it is claimed,
// then left to the poll (rolled back).
const COMMIT_RECHECKS_MS = [5, 10, 20, 40, 80, 160, 320, 640, 1280]
// Never sooner than this after a pass, however soon the next delivery is due: rounding, clock steps.
const MIN_WAIT_MS = 20

/**
 * The wait before attempt `attempts + 1`: `base * 2^(attempts - 1)`, at most `max`, then a random part of it
 * between a half and the whole ("equal jitter"), so that deliveries that failed together spread out.
 */
export function retryDelayMs(attempts: number, config: WebhooksConfig, random: () => number): number {
  const ceiling = Math.min(config.retryMaxSeconds, config.retryBaseSeconds * 2 ** (attempts - 1)) * 1000
  return ceiling / 2 + (ceiling / 2) * random()
}

export function createWebhookDispatcher(deps: WebhookDispatcherDeps): WebhookDispatcher {
  const { deliveries, outbox, config, clock, log } = deps
  const onAttempt = deps.onAttempt ?? (() => {})
  const random = deps.random ?? Math.random
  const endpoints = new Map(
    config.endpoints.map((endpoint) => [endpoint.name, createWebhookEndpoint(endpoint)]),
  )
  const names = [...endpoints.keys()]
  const leaseSeconds = Math.ceil(config.timeoutMs / 1000) + LEASE_MARGIN_SECONDS

  let started = false
  let stopping = false
  let timer: NodeJS.Timeout | undefined
  let timerAt = Number.POSITIVE_INFINITY
  let running: Promise<void> | undefined
  let runAgain = false
  let stopListening = () => {}
  let stopped: Promise<void> = Promise.resolve()
  let expireAt = 0
  let purgeAt = 0
  /** When the table is next asked what falls due (nextDueAt): once a poll interval, not after every pass. */
  let lookAt = 0
  /** The earliest known time (epoch ms) a delivery falls due: a retry this process set, or the last look. */
  let dueAt = Number.POSITIVE_INFINITY
  /** Ids this process enqueued and has not claimed yet, with how many times each was looked for. */
  const awaited = new Map<string, number>()
  const inFlight = new Set<AbortController>()
  // A database that is down fails every pass: said once a minute, not at every poll.
  const reportPassFailure = reportAtMostEvery<unknown>(60_000, (error) =>
    log.error({ err: error }, 'webhook dispatch failed; trying again at the next poll'),
  )

  async function record(claim: Claim, endpoint: WebhookEndpoint, failure: string | undefined): Promise<void> {
    const { delivery } = claim
    const about = {
      delivery: delivery.id,
      type: delivery.type,
      endpoint: endpoint.name,
      origin: endpoint.origin,
      attempt: delivery.attempts,
    }
    let kept: boolean
    if (failure === undefined) {
      onAttempt('delivered')
      kept = await deliveries.markDelivered(claim, epochSeconds(clock))
      if (kept) log.debug(about, 'webhook delivered')
    } else if (delivery.attempts >= config.maxAttempts) {
      onAttempt('dead')
      kept = await deliveries.markFailed(claim, failure, null)
      if (kept) log.error({ ...about, error: failure }, 'webhook delivery failed for the last time: dead')
    } else {
      onAttempt('failed')
      const retryAt = Math.ceil((clock.now() + retryDelayMs(delivery.attempts, config, random)) / 1000)
      kept = await deliveries.markFailed(claim, failure, retryAt)
      if (kept) dueAt = Math.min(dueAt, retryAt * 1000)
      if (kept) log.warn({ ...about, error: failure, retryAt }, 'webhook delivery failed; it will be retried')
    }
    if (!kept) log.warn(about, 'webhook attempt outlived its lease; another sender may repeat it')
  }

  async function send(claim: Claim): Promise<void> {
    const endpoint = endpoints.get(claim.delivery.endpoint)
    if (endpoint === undefined) return // claimed by configured names only
    const controller = new AbortController()
    inFlight.add(controller)
    let failure: string | undefined
    try {
      const attempt = { id: claim.delivery.id, payload: claim.payload, timestamp: epochSeconds(clock) }
      failure = await attemptDelivery(endpoint, attempt, controller.signal, config.timeoutMs)
    } finally {
      inFlight.delete(controller)
    }
    try {
      if (controller.signal.aborted) {
        await deliveries.release(claim)
        log.info({ delivery: claim.delivery.id }, 'webhook attempt abandoned at shutdown; it stays pending')
      } else {
        await record(claim, endpoint, failure)
      }
    } catch (error) {
      // The lease runs out and the delivery is attempted again: at least once, never lost.
      log.error({ err: error, delivery: claim.delivery.id }, 'webhook attempt could not be recorded')
    }
  }

  async function deliverDue(): Promise<number> {
    let attempted = 0
    while (!stopping) {
      const now = epochSeconds(clock)
      const claims = await deliveries.claimDue(names, now, now + leaseSeconds, BATCH_SIZE)
      for (const claim of claims) awaited.delete(claim.delivery.id)
      await Promise.all(claims.map(send))
      attempted += claims.length
      if (claims.length < BATCH_SIZE) break
    }
    return attempted
  }

  async function maintain(): Promise<void> {
    const now = clock.now()
    if (now >= expireAt) {
      expireAt = now + EXPIRE_EVERY_MS
      await deliveries.expire(epochSeconds(clock))
    }
    if (now >= purgeAt && config.retentionDays > 0) {
      purgeAt = now + PURGE_EVERY_MS
      const purged = await deliveries.purge(epochSeconds(clock) - config.retentionDays * 86_400)
      if (purged > 0) log.info({ purged }, 'old webhook deliveries deleted')
    }
  }

  /**
   * How long to sleep after a pass: until the next retry falls due, a fresh enqueue commits, or the poll. What
   * this process did not schedule itself (another instance's deliveries and retries, one revived from the CLI,
   * a lease that ran out) it learns from the table, once a poll interval: asking after every pass cost each
   * login a query (the events bench).
   */
  async function nextWait(): Promise<number> {
    if (clock.now() >= lookAt) {
      lookAt = clock.now() + config.pollIntervalMs
      const due = await deliveries.nextDueAt(names, epochSeconds(clock))
      dueAt = due === undefined ? Number.POSITIVE_INFINITY : due * 1000
    }
    let wait = Math.min(config.pollIntervalMs, dueAt - clock.now())
    for (const [id, looks] of awaited) {
      const delay = COMMIT_RECHECKS_MS[looks]
      if (delay === undefined) awaited.delete(id)
      else {
        awaited.set(id, looks + 1)
        wait = Math.min(wait, delay)
      }
    }
    return Math.max(wait, MIN_WAIT_MS)
  }

  function schedule(ms: number): void {
    if (stopping || !started) return
    if (timer !== undefined && timerAt <= Date.now() + ms) return
    clearTimeout(timer)
    timerAt = Date.now() + ms
    timer = setTimeout(run, ms)
    timer.unref()
  }

  function run(): void {
    timer = undefined
    timerAt = Number.POSITIVE_INFINITY
    if (running) {
      runAgain = true
      return
    }
    let wait = config.pollIntervalMs
    running = (async () => {
      await maintain()
      if (names.length === 0) return
      // What was due by now this pass claims (or finds leased, and the next look at the table says until when).
      if (dueAt <= clock.now()) dueAt = Number.POSITIVE_INFINITY
      await deliverDue()
      if (!stopping) wait = await nextWait()
    })()
      .catch(reportPassFailure)
      .finally(() => {
        running = undefined
        schedule(runAgain ? 0 : wait)
        runAgain = false
      })
  }

  return {
    start() {
      if (started) return
      started = true
      stopping = false
      if (names.length > 0) {
        const to = [...endpoints.values()].map(({ name, origin }) => ({ name, origin }))
        log.info({ endpoints: to }, 'sending webhooks')
      }
      const types = deps.eventTypes ?? []
      for (const endpoint of types.length > 0 ? config.endpoints : []) {
        const idle = endpoint.events.filter((filter) => !types.some((type) => filterTakes([filter], type)))
        if (idle.length > 0) {
          log.warn({ endpoint: endpoint.name, filters: idle }, 'WEBHOOK_EVENTS names what no event type is')
        }
      }
      stopListening = outbox.onEnqueued((ids) => {
        for (const id of ids) awaited.set(id, 1)
        schedule(COMMIT_RECHECKS_MS[0] ?? 0)
      })
      schedule(0)
    },

    stop(graceMs = STOP_GRACE_MS) {
      // A second call (the server's shutdown, then deps.close) waits for the same stop.
      if (!started) return stopped
      stopping = true
      started = false
      stopListening()
      clearTimeout(timer)
      timer = undefined
      const abandon = setTimeout(() => {
        for (const controller of inFlight) controller.abort()
      }, graceMs)
      stopped = Promise.resolve(running).finally(() => {
        clearTimeout(abandon)
        for (const endpoint of endpoints.values()) endpoint.close()
      })
      return stopped
    },

    deliverDue,
  }
}
