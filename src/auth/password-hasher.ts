// Hashes passwords with argon2id and verifies both argon2id and the bcrypt hashes that Flask-Bcrypt wrote,
// so users migrated from the Flask app keep their passwords; their hashes are upgraded at the next login.
// Both libraries run the work on libuv's thread pool, off the event loop.

import { availableParallelism } from 'node:os'
import { type Algorithm, hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2'
import { verify as bcryptVerify } from '@node-rs/bcrypt'
import { AppError } from '../http/problem.ts'

export type Argon2Params = { memoryKib: number; iterations: number; parallelism: number }

export interface PasswordHasher {
  /** `requester`: whom the work is for, so that no one account or address holds the whole queue. */
  hash(password: string, requester?: HashRequester): Promise<string>
  /** False for a wrong password and for a hash it cannot read; never throws for those. */
  verify(passwordHash: string, password: string, requester?: HashRequester): Promise<boolean>
  /** True when the hash is bcrypt, or argon2 weaker than the current parameters. */
  needsRehash(passwordHash: string): boolean
}

// The whole forms of the hashes verify() reads, for an import to refuse any other before it is stored.
const BCRYPT_HASH = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/

// What a stored hash may ask verify() to spend. A hash is the cost of every check of it, and an imported one
// (or one written to the database by other means) could ask for days of bcrypt or gigabytes of argon2: a few
// wrong guesses at that account would then hold every hash slot, and nobody could log in. bcrypt: Flask-Bcrypt
// writes cost 12; 15 takes seconds. argon2: up to 256 MiB (or ARGON2_MEMORY_KIB if higher), 10 passes (or
// ARGON2_ITERATIONS), 16 lanes; a salt of 8 bytes and a hash of 16 at least (RFC 9106), or it is no hash.
const BCRYPT_COSTS = { min: 4, max: 15 }
const ARGON2_LIMITS = { memoryKib: 262_144, iterations: 10, parallelism: 16, saltBytes: 8, hashBytes: 16 }
const ARGON2_PARTS =
  /^\$argon2(?:id|i|d)\$v=(?:16|19)\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

/** Bytes of unpadded base64. */
const base64Bytes = (text: string) => Math.floor((text.length * 3) / 4)

/**
 * Whether verify() reads this stored hash: bcrypt ($2a$, $2b$, $2y$, as Flask-Bcrypt writes) or argon2, each
 * within the costs above (`params`: this server's own argon2 parameters, which are always within).
 */
export function isReadableHash(
  passwordHash: string,
  params?: Pick<Argon2Params, 'memoryKib' | 'iterations'>,
): boolean {
  if (BCRYPT_HASH.test(passwordHash)) {
    const cost = Number(passwordHash.slice(4, 6))
    return cost >= BCRYPT_COSTS.min && cost <= BCRYPT_COSTS.max
  }
  const parts = ARGON2_PARTS.exec(passwordHash)
  if (!parts) return false
  const [m, t, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])]
  return (
    m <= Math.max(ARGON2_LIMITS.memoryKib, params?.memoryKib ?? 0) &&
    t >= 1 &&
    t <= Math.max(ARGON2_LIMITS.iterations, params?.iterations ?? 0) &&
    p >= 1 &&
    p <= ARGON2_LIMITS.parallelism &&
    base64Bytes(parts[4] ?? '') >= ARGON2_LIMITS.saltBytes &&
    base64Bytes(parts[5] ?? '') >= ARGON2_LIMITS.hashBytes
  )
}

// `Algorithm` is a const enum in the package's types; its runtime value for argon2id is 2.
const ARGON2ID = 2 as Algorithm
const BCRYPT_PREFIX = /^\$2[aby]\$\d\d\$/
const ARGON2_PARAMS = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/
// bcrypt reads only the first 72 bytes of a password. Refusing longer ones for bcrypt hashes keeps two
// passwords that share those bytes from both matching. A Flask user whose password was longer logs in with
// its first 72 bytes, which is all bcrypt ever stored of it, and is then rehashed with argon2id.
const BCRYPT_MAX_BYTES = 72

// Each argon2 hash holds memoryKib of memory until it ends. More hashes at once than cores only queue on the CPU
// while holding that memory and crowding the event loop, so at most one per core runs; the rest wait here.
// Past MAX_WAITING_PER_SLOT waiting per core, a new hash is refused (429) rather than queued: a flood must not
// hold every other login for seconds, nor grow memory without bound. And one account, or one client address,
// may hold at most MAX_SHARE_PER_SLOT places per core (running or waiting): a flood from one account or
// address is refused past its share, and everyone else's logins still find room. A flood from many accounts
// and addresses (a botnet) can still fill the queue: a check marked `priority` (a login with the account's
// device token, which proves an earlier login) waits in a lane of its own, served first, with places of its own.
const MAX_WAITING_PER_SLOT = 32
const MAX_SHARE_PER_SLOT = 4

/**
 * Whom a password check is for: it counts against the share of each. `priority`: the requester proved an
 * earlier login of the account (a device token).
 */
export type HashRequester = {
  account?: string | undefined
  address?: string | undefined
  priority?: boolean
}

const busy = (detail: string) => new AppError('rate_limited', detail, { headers: { 'retry-after': '1' } })

/** Told how the queue fares (the metrics): its length when it changes, each hash's wait, each refusal. */
export type HashQueueObserver = {
  depth(waiting: number): void
  waited(seconds: number): void
  refused(): void
}

const unobserved: HashQueueObserver = { depth: () => {}, waited: () => {}, refused: () => {} }

function createLimiter(slots: number, observer: HashQueueObserver) {
  let running = 0
  const waiting: (() => void)[] = []
  const waitingFirst: (() => void)[] = []
  const held = new Map<string, number>()
  const maxShare = slots * MAX_SHARE_PER_SLOT
  const keysOf = ({ account, address }: HashRequester) => [
    ...(account === undefined ? [] : [`account:${account}`]),
    ...(address === undefined ? [] : [`address:${address}`]),
  ]
  return async <T>(requester: HashRequester, work: () => Promise<T>): Promise<T> => {
    const keys = keysOf(requester)
    if (keys.some((key) => (held.get(key) ?? 0) >= maxShare)) {
      observer.refused()
      throw busy('Too many password checks at once for this account or address; try again shortly')
    }
    const lane = requester.priority ? waitingFirst : waiting
    const places = requester.priority ? maxShare : slots * MAX_WAITING_PER_SLOT
    if (running >= slots && lane.length >= places) {
      observer.refused()
      throw busy('The server is busy checking passwords; try again shortly')
    }
    for (const key of keys) held.set(key, (held.get(key) ?? 0) + 1)
    try {
      if (running < slots) {
        running++
        observer.waited(0)
      } else {
        const queuedAt = performance.now()
        await new Promise<void>((resolve) => {
          lane.push(resolve)
          observer.depth(waiting.length + waitingFirst.length)
        })
        observer.waited((performance.now() - queuedAt) / 1000)
      }
      try {
        return await work()
      } finally {
        const next = waitingFirst.shift() ?? waiting.shift()
        if (next) {
          observer.depth(waiting.length + waitingFirst.length)
          next()
        } else running--
      }
    } finally {
      for (const key of keys) {
        const count = (held.get(key) ?? 1) - 1
        if (count === 0) held.delete(key)
        else held.set(key, count)
      }
    }
  }
}

/** A hash the library cannot read is a failed match; the limiter's refusal (busy) is not. */
function unreadableIsFalse(error: unknown): false {
  if (error instanceof AppError) throw error
  return false
}

export function createPasswordHasher(
  params: Argon2Params,
  concurrency = availableParallelism(),
  queue: HashQueueObserver = unobserved,
): PasswordHasher {
  const limit = createLimiter(concurrency, queue)
  const options = {
    algorithm: ARGON2ID,
    memoryCost: params.memoryKib,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  }
  return {
    hash: (password, requester = {}) => limit(requester, () => argon2Hash(password, options)),

    async verify(passwordHash, password, requester = {}) {
      // A hash past the costs it may ask for is refused without being run (see isReadableHash).
      if (!isReadableHash(passwordHash, params)) return false
      if (BCRYPT_PREFIX.test(passwordHash)) {
        const bytes = Buffer.from(password, 'utf8')
        const tooLong = bytes.length > BCRYPT_MAX_BYTES
        // Run bcrypt even when the answer is already no, so that the time taken does not tell.
        const matches = await limit(requester, () =>
          bcryptVerify(bytes.subarray(0, BCRYPT_MAX_BYTES), passwordHash),
        ).catch(unreadableIsFalse)
        return matches && !tooLong
      }
      if (!passwordHash.startsWith('$argon2')) return false
      return limit(requester, () => argon2Verify(passwordHash, password)).catch(unreadableIsFalse)
    },

    needsRehash(passwordHash) {
      const match = ARGON2_PARAMS.exec(passwordHash)
      if (!match) return true
      const [m, t, p] = [Number(match[1]), Number(match[2]), Number(match[3])]
      return m < params.memoryKib || t < params.iterations || p !== params.parallelism
    },
  }
}
