// Hashes passwords with argon2id and verifies both argon2id and the bcrypt hashes that Flask-Bcrypt wrote,
// so users migrated from the Flask app keep their passwords; their hashes are upgraded at the next login.
// Both libraries run the work on libuv's thread pool, off the event loop.

import { availableParallelism } from 'node:os'
import { type Algorithm, hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2'
import { verify as bcryptVerify } from '@node-rs/bcrypt'
import { AppError } from '../http/problem.ts'

export type Argon2Params = { memoryKib: number; iterations: number; parallelism: number }

export interface PasswordHasher {
  hash(password: string): Promise<string>
  /** False for a wrong password and for a hash it cannot read; never throws for those. */
  verify(passwordHash: string, password: string): Promise<boolean>
  /** True when the hash is bcrypt, or argon2 weaker than the current parameters. */
  needsRehash(passwordHash: string): boolean
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
// Past this many waiting, a new hash is refused (429) rather than queued: a flood of logins must not hold
// every other login for seconds, nor grow memory without bound.
const MAX_WAITING_PER_SLOT = 32

function createLimiter(slots: number) {
  let running = 0
  const waiting: (() => void)[] = []
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (running < slots) running++
    else if (waiting.length >= slots * MAX_WAITING_PER_SLOT) {
      throw new AppError('rate_limited', 'The server is busy checking passwords; try again shortly', {
        headers: { 'retry-after': '1' },
      })
    } else await new Promise<void>((resolve) => waiting.push(resolve))
    try {
      return await work()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else running--
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
): PasswordHasher {
  const limit = createLimiter(concurrency)
  const options = {
    algorithm: ARGON2ID,
    memoryCost: params.memoryKib,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  }
  return {
    hash: (password) => limit(() => argon2Hash(password, options)),

    async verify(passwordHash, password) {
      if (BCRYPT_PREFIX.test(passwordHash)) {
        const bytes = Buffer.from(password, 'utf8')
        const tooLong = bytes.length > BCRYPT_MAX_BYTES
        // Run bcrypt even when the answer is already no, so that the time taken does not tell.
        const matches = await limit(() =>
          bcryptVerify(bytes.subarray(0, BCRYPT_MAX_BYTES), passwordHash),
        ).catch(unreadableIsFalse)
        return matches && !tooLong
      }
      if (!passwordHash.startsWith('$argon2')) return false
      return limit(() => argon2Verify(passwordHash, password)).catch(unreadableIsFalse)
    },

    needsRehash(passwordHash) {
      const match = ARGON2_PARAMS.exec(passwordHash)
      if (!match) return true
      const [m, t, p] = [Number(match[1]), Number(match[2]), Number(match[3])]
      return m < params.memoryKib || t < params.iterations || p !== params.parallelism
    },
  }
}
