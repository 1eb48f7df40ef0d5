// The Redis connections, when REDIS_URL is set. Redis holds only short-lived, shared state (rate-limit
// counters) and carries revocations between instances; the database stays the source of truth. So a Redis
// outage must never hang a request: commands fail fast (no offline queue, a short timeout) and each feature
// falls back as docs/deployment.md describes, while the client keeps reconnecting in the background.

import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { Config } from '../config/load-config.ts'

export type RedisConfig = NonNullable<Config['redis']>

export type RedisConnections = {
  /** Commands: counters, PUBLISH. */
  client: Redis
  /** A connection in subscriber mode, which can do nothing else. */
  subscriber: Redis
  keyPrefix: string
  /** Waits for both connections, at most the connect timeout; says whether they are up. */
  waitUntilReady(): Promise<boolean>
  close(): Promise<void>
}

// Loaded only when REDIS_URL is set: a deployment without Redis does not pay its memory.
const require = createRequire(import.meta.url)

export function createRedis(config: RedisConfig, onError: (error: Error) => void): RedisConnections {
  const { Redis } = require('ioredis') as typeof import('ioredis')
  const connectTimeoutMs = Math.max(config.commandTimeoutMs, 1000)
  const options = {
    connectTimeout: connectTimeoutMs,
    // Reconnect for ever, at most every 2 s: the process outlives an outage and recovers by itself.
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
  }
  const client = new Redis(config.url, {
    ...options,
    enableOfflineQueue: false,
    commandTimeout: config.commandTimeoutMs,
    maxRetriesPerRequest: 0,
    // A server that stops answering (a black-holed network) is cut off, so that commands fail at once
    // (not ready) instead of each waiting out its timeout.
    socketTimeout: Math.max(config.commandTimeoutMs * 2, 1000),
  })
  // SUBSCRIBE is queued until connected, however long that takes (no retry limit, or ioredis would drop it
  // after 20 reconnects), and renewed after every reconnect.
  const subscriber = new Redis(config.url, { ...options, autoResubscribe: true, maxRetriesPerRequest: null })
  // ioredis reports every failed reconnect; one message per outage is enough.
  let reported = false
  for (const connection of [client, subscriber]) {
    connection.on('error', (error: Error) => {
      if (reported) return
      reported = true
      onError(error)
    })
    connection.on('ready', () => {
      reported = false
    })
  }
  return {
    client,
    subscriber,
    keyPrefix: config.keyPrefix,
    async waitUntilReady() {
      const deadline = Date.now() + connectTimeoutMs
      while (client.status !== 'ready' || subscriber.status !== 'ready') {
        if (Date.now() >= deadline) return false
        await sleep(20)
      }
      return true
    },
    async close() {
      // Nothing Tessera keeps in Redis needs a clean goodbye, and QUIT to a server that does not answer
      // would hold the shutdown: drop both connections.
      client.disconnect()
      subscriber.disconnect()
    },
  }
}
