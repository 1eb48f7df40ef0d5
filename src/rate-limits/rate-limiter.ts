// The counters behind the rate limits that routes declare (src/access/rate-limit.plugin.ts): one per
// RATE_LIMIT_* setting, each counting requests per key (a client address, an account, a session). Counters are
// fixed windows kept by rate-limiter-flexible: in Redis when REDIS_URL is set, so that every instance
// counts together, else in this process. When Redis cannot answer, counting falls back to this process
// (fail open to per-instance limits rather than refusing logins or letting them through unlimited), and
// the log says so.

import { createRequire } from 'node:module'
import { isIPv6 } from 'node:net'
import type * as Flexible from 'rate-limiter-flexible'
import type { RateLimits } from '../config/load-config.ts'
import { AppError } from '../http/problem.ts'
import { reportAtMostEvery } from '../lib/report-at-most.ts'
import type { RedisConnections } from '../redis/create-redis.ts'

// The package's index loads every store it supports (Mongo, MySQL, Dynamo, ...); we take the two we use, and
// the Redis one only when REDIS_URL is set.
const require = createRequire(import.meta.url)
const RateLimiterMemory =
  require('rate-limiter-flexible/lib/RateLimiterMemory.js') as typeof Flexible.RateLimiterMemory
const RateLimiterRes =
  require('rate-limiter-flexible/lib/RateLimiterRes.js') as typeof Flexible.RateLimiterRes

export interface RateLimiter {
  /** Counts one request for `key`; throws 429 `rate_limited` with Retry-After once the limit is passed. */
  consume(key: string): Promise<void>
  /** Takes back one counted request of `key` (a successful login was not a failed one). */
  refund(key: string): Promise<void>
  /** Counts one request for `key` without refusing it, however far past the limit. */
  penalize(key: string): Promise<void>
  /** Forgets every request counted for `key` in this window (a password reset ends the failed logins). */
  forget(key: string): Promise<void>
}

export type RateLimiters = Record<Exclude<keyof RateLimits, 'windowSeconds'>, RateLimiter>

const unlimited: RateLimiter = {
  consume: async () => {},
  refund: async () => {},
  penalize: async () => {},
  forget: async () => {},
}

export function createRateLimiters(
  limits: RateLimits,
  redis: RedisConnections | undefined,
  onStoreError: (error: unknown) => void,
  /** Told of each request a limit refuses (the metrics). */
  onRefused: (name: keyof RateLimiters) => void = () => {},
): RateLimiters {
  const reportStoreError = reportAtMostEvery(60_000, onStoreError)

  const make = (name: keyof RateLimiters): RateLimiter => {
    const points = limits[name]
    if (points === 0) return unlimited
    const options = {
      points,
      duration: limits.windowSeconds,
      keyPrefix: `${redis?.keyPrefix ?? ''}rl:${name}`,
    }
    const inProcess = new RateLimiterMemory(options)
    // Not the library's insuranceLimiter: it falls back silently, and an outage must be reported.
    const shared =
      redis &&
      new (require('rate-limiter-flexible/lib/RateLimiterRedis.js') as typeof Flexible.RateLimiterRedis)({
        ...options,
        storeClient: redis.client,
        rejectIfRedisNotReady: true,
      })

    /** Resolves with the store's verdict; a RateLimiterRes thrown means over the limit. */
    const count = async (
      use: (limiter: Flexible.RateLimiterMemory | Flexible.RateLimiterRedis) => Promise<unknown>,
    ) => {
      if (!shared) return use(inProcess)
      try {
        return await use(shared)
      } catch (error) {
        if (error instanceof RateLimiterRes) throw error
        reportStoreError(error)
        return use(inProcess)
      }
    }

    return {
      async consume(key) {
        try {
          await count((limiter) => limiter.consume(key))
        } catch (outcome) {
          if (!(outcome instanceof RateLimiterRes)) throw outcome
          onRefused(name)
          const seconds = Math.max(1, Math.ceil(outcome.msBeforeNext / 1000))
          throw new AppError('rate_limited', `Too many attempts; try again in ${seconds} s`, {
            headers: { 'retry-after': String(seconds) },
          })
        }
      },
      async refund(key) {
        await count((limiter) => limiter.reward(key, 1))
      },
      async penalize(key) {
        await count((limiter) => limiter.penalty(key, 1))
      },
      async forget(key) {
        await count((limiter) => limiter.delete(key))
      },
    }
  }
  const { windowSeconds: _, ...sizes } = limits
  return Object.fromEntries(
    Object.keys(sizes).map((name) => [name, make(name as keyof RateLimiters)]),
  ) as RateLimiters
}

/**
 * The key a client address is counted under. An IPv6 client usually holds a whole /64 and can pick any
 * address in it, so IPv6 addresses count per /64; IPv4 (also IPv4-mapped IPv6) per address.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped?.[1]) return mapped[1]
  if (!isIPv6(ip)) return ip
  const [head = '', tail] = ip.toLowerCase().split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':')
  const missing = 8 - headGroups.length - tailGroups.length
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(missing).fill('0'), ...tailGroups]
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}
