// With several instances, a revocation made on one (logout, password change, a disabled user) must reach the
// others' auth-state caches. Each instance publishes what it forgets on a Redis channel and forgets what the
// others publish, so a revocation takes effect everywhere within a round trip to Redis. When Redis is down
// nothing is lost but speed: every instance re-reads the database after AUTH_STATE_CACHE_TTL_MS anyway, and
// forgets everything it holds when the subscription comes back, in case it missed a message.

import { reportAtMostEvery } from '../lib/report-at-most.ts'
import type { RedisConnections } from '../redis/create-redis.ts'
import type { AuthStateCache } from './auth-state.ts'

type Revocation = { session: string } | { user: string }

export function broadcastRevocations(
  cache: AuthStateCache,
  redis: RedisConnections,
  onError: (error: unknown) => void,
): AuthStateCache {
  const channel = `${redis.keyPrefix}revocations`
  const reportError = reportAtMostEvery(60_000, onError)
  const publish = (revocation: Revocation) => {
    redis.client.publish(channel, JSON.stringify(revocation)).catch(reportError)
  }

  // After a reconnect, forget everything once the subscription is confirmed again: revocations published
  // while it was down, or before the confirmation, may have been missed.
  let subscribedBefore = false
  redis.subscriber.on('ready', () => {
    if (!subscribedBefore) return
    redis.subscriber
      .subscribe(channel)
      .then(() => cache.forgetAll())
      .catch(reportError)
  })
  redis.subscriber
    .subscribe(channel)
    .then(() => {
      subscribedBefore = true
    })
    .catch(onError)
  redis.subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return
    const revocation = parse(message)
    if (revocation && 'session' in revocation) cache.forgetSession(revocation.session)
    else if (revocation && 'user' in revocation) cache.forgetUser(revocation.user)
  })

  return {
    get: (sessionId) => cache.get(sessionId),
    forgetUser(userId) {
      cache.forgetUser(userId)
      publish({ user: userId })
    },
    forgetSession(sessionId) {
      cache.forgetSession(sessionId)
      publish({ session: sessionId })
    },
    forgetAll: () => cache.forgetAll(),
  }
}

function parse(message: string): Revocation | undefined {
  try {
    const value: unknown = JSON.parse(message)
    if (typeof value !== 'object' || value === null) return undefined
    const { session, user } = value as Record<string, unknown>
    if (typeof session === 'string') return { session }
    if (typeof user === 'string') return { user }
  } catch {}
  return undefined
}
