// The Redis connections, when REDIS_URL is set. Redis holds only short-lived, shared state (rate-limit
// counters) and carries revocations between instances; the database stays the source of truth. So a Redis
// outage must never hang a request: commands fail fast (no offline queue, a short timeout) and each feature
// falls back as docs/deployment.md describes, while the client keeps reconnecting in the background.
import { Redis } from 'ioredis'
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

export function createRedis(config: RedisConfig, onError: (error: Error) => void): RedisConnections {
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
  })
  // Subscriptions are queued until connected and renewed after every reconnect.
  const subscriber = new Redis(config.url, { ...options, autoResubscribe: true })
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
      const ready = (connection: Redis) =>
        connection.status === 'ready' ||
        new Promise<boolean>((resolve) => connection.once('ready', () => resolve(true)))
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), connectTimeoutMs)
      })
      const result = await Promise.race([
        Promise.all([ready(client), ready(subscriber)]).then(() => true),
        timeout,
      ])
      clearTimeout(timer)
      return result
    },
    async close() {
      // quit() waits for replies in flight; a dead connection is simply dropped.
      await Promise.all(
        [client, subscriber].map((c) =>
          c.status === 'ready' ? c.quit().catch(() => c.disconnect()) : c.disconnect(),
        ),
      )
    },
  }
}
