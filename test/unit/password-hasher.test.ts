// createPasswordHasher on its own: the argon2id hashes it writes, what it verifies, and which stored hashes
// it asks to upgrade.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { type Algorithm, hash as argon2Hash } from '@node-rs/argon2'
import { hash as bcryptHash } from '@node-rs/bcrypt'
import { createPasswordHasher, isReadableHash } from '../../src/auth/password-hasher.ts'

// Cheap but distinct from every default, so that the hash shows the configured values were used.
const PARAMS = { memoryKib: 2048, iterations: 2, parallelism: 2 }
const PASSWORD = 'correct horse battery'

// `Algorithm` is a const enum in @node-rs/argon2's types; its runtime values: 0 argon2d, 1 argon2i, 2 argon2id.
const ARGON2I = 1 as Algorithm
const ARGON2ID = 2 as Algorithm

function argon2idWith(changes: Partial<{ memoryCost: number; timeCost: number; parallelism: number }>) {
  return argon2Hash(PASSWORD, {
    algorithm: ARGON2ID,
    memoryCost: PARAMS.memoryKib,
    timeCost: PARAMS.iterations,
    parallelism: PARAMS.parallelism,
    ...changes,
  })
}

describe('createPasswordHasher', () => {
  const hasher = createPasswordHasher(PARAMS)
  let stored: string
  before(async () => {
    stored = await hasher.hash(PASSWORD)
  })

  describe('hash', () => {
    it('writes argon2id (version 19) with the configured memory, iterations and parallelism', () => {
      assert.match(stored, /^\$argon2id\$v=19\$m=2048,t=2,p=2\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/)
    })

    it('salts every hash: the same password twice gives two different hashes', async () => {
      assert.notEqual(await hasher.hash(PASSWORD), stored)
    })
  })

  describe('verify', () => {
    it('refuses, without running it, a stored hash that asks for more than a check may spend (days of bcrypt, gigabytes of argon2)', async () => {
      const salt = 'c2FsdHNhbHRzYWx0c2FsdA'
      const digest = 'aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA'
      const started = performance.now()
      for (const absurd of [
        `$2b$31$${'a'.repeat(53)}`,
        `$argon2id$v=19$m=8000000,t=1,p=1$${salt}$${digest}`,
        `$argon2id$v=19$m=1024,t=1000,p=1$${salt}$${digest}`,
        `$argon2id$v=19$m=1024,t=1,p=255$${salt}$${digest}`,
        `$argon2id$v=19$m=1024,t=1,p=1$c2E$${digest}`,
      ]) {
        assert.equal(isReadableHash(absurd), false, absurd)
        assert.equal(await hasher.verify(absurd, PASSWORD), false, absurd)
      }
      assert.ok(performance.now() - started < 1000, 'none was run')
      assert.equal(isReadableHash(`$2b$12$${'a'.repeat(53)}`), true, "Flask-Bcrypt's cost 12")
      assert.equal(isReadableHash(stored), true, 'what this server writes')
    })

    it('is true for the password', async () => {
      assert.equal(await hasher.verify(stored, PASSWORD), true)
    })

    it('is false for another password, a changed case, a prefix and an empty password', async () => {
      for (const password of ['correct horse battery!', 'Correct horse battery', 'correct horse', '']) {
        assert.equal(await hasher.verify(stored, password), false, password)
      }
    })

    it('verifies an argon2id hash made with other parameters, which it reads from the hash', async () => {
      assert.equal(await hasher.verify(await argon2idWith({ memoryCost: 512, timeCost: 1 }), PASSWORD), true)
    })

    it('verifies bcrypt hashes with the $2a$, $2b$ and $2y$ prefixes, which are one algorithm', async () => {
      const bcrypt = await bcryptHash(PASSWORD, 4)
      for (const prefix of ['$2a$', '$2b$', '$2y$']) {
        const rewritten = prefix + bcrypt.slice(4)
        assert.equal(await hasher.verify(rewritten, PASSWORD), true, prefix)
        assert.equal(await hasher.verify(rewritten, 'not the password'), false, prefix)
      }
    })

    it('is false, never a throw, for a password over 72 bytes against a bcrypt hash', async () => {
      const long = 'x'.repeat(80)
      assert.equal(await hasher.verify(await bcryptHash(long, 4), long), false)
    })

    it('is false, never a throw, for corrupt or unreadable hashes and for empty strings', async () => {
      const garbage = [
        '',
        'garbage',
        PASSWORD,
        '$argon2id$',
        '$argon2id$v=19$m=2048,t=2,p=2$',
        '$argon2id$v=19$m=2048,t=2,p=2$!!!!$!!!!',
        stored.slice(0, -10),
        `${stored.slice(0, -4)}AAAA`,
        '$argon2x$v=19$m=2048,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2g',
        '$2b$',
        '$2b$04$',
        '$2b$04$tooShortToBeAHash',
        '$2b$99$abcdefghijklmnopqrstuuVUrPmXD6q/nVSSp7pNDhCR9071IfIRe',
        '$2x$04$abcdefghijklmnopqrstuuVUrPmXD6q/nVSSp7pNDhCR9071IfIRe',
        '$1$md5crypt$hash',
        '\u0000',
      ]
      for (const passwordHash of garbage) {
        for (const password of [PASSWORD, '']) {
          assert.equal(
            await hasher.verify(passwordHash, password),
            false,
            `${JSON.stringify(passwordHash)} / ${JSON.stringify(password)}`,
          )
        }
      }
    })
  })

  describe('needsRehash', () => {
    it('is false for a hash it just wrote', () => {
      assert.equal(hasher.needsRehash(stored), false)
    })

    it('is false for argon2id with equal parameters, or with more memory or iterations', async () => {
      assert.equal(hasher.needsRehash(await argon2idWith({})), false)
      assert.equal(hasher.needsRehash(await argon2idWith({ memoryCost: 4096 })), false)
      assert.equal(hasher.needsRehash(await argon2idWith({ timeCost: 3 })), false)
    })

    it('is true for argon2id with less memory, fewer iterations or other parallelism', async () => {
      assert.equal(hasher.needsRehash(await argon2idWith({ memoryCost: 1024 })), true)
      assert.equal(hasher.needsRehash(await argon2idWith({ timeCost: 1 })), true)
      assert.equal(hasher.needsRehash(await argon2idWith({ parallelism: 1 })), true)
    })

    it('is true for argon2i, even with the configured parameters', async () => {
      const argon2i = await argon2Hash(PASSWORD, {
        algorithm: ARGON2I,
        memoryCost: PARAMS.memoryKib,
        timeCost: PARAMS.iterations,
        parallelism: PARAMS.parallelism,
      })
      assert.match(argon2i, /^\$argon2i\$/)
      assert.equal(hasher.needsRehash(argon2i), true)
    })

    it('is true for every bcrypt hash, whatever its cost', async () => {
      assert.equal(hasher.needsRehash(await bcryptHash(PASSWORD, 4)), true)
      assert.equal(hasher.needsRehash(await bcryptHash(PASSWORD, 12)), true)
    })

    it('is true for a hash it cannot read', () => {
      assert.equal(hasher.needsRehash(''), true)
      assert.equal(hasher.needsRehash('garbage'), true)
    })
  })
})

describe('password hashing under a flood', () => {
  it('runs at most one hash per slot, queues a bounded number, and refuses the rest with rate_limited', async () => {
    const hasher = createPasswordHasher({ memoryKib: 1024, iterations: 1, parallelism: 1 }, 1)
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => hasher.hash(`password ${i}`)),
    )
    const refused = results.filter((r) => r.status === 'rejected')
    assert.equal(results.length - refused.length, 1 + 32, 'one running and 32 waiting per slot')
    for (const r of refused) assert.equal((r as PromiseRejectedResult).reason.code, 'rate_limited')
  })

  it('still admits a priority check (a device token holder) when the queue is full, and runs it before the others waiting', async () => {
    const hasher = createPasswordHasher({ memoryKib: 1024, iterations: 1, parallelism: 1 }, 1)
    const finished: string[] = []
    const flood = Array.from({ length: 40 }, (_, i) =>
      hasher.hash(`password ${i}`, { address: `198.51.100.${i}` }).then(() => finished.push(`flood ${i}`)),
    )
    const owner = hasher
      .hash('the owner', { account: 'owner device', priority: true })
      .then(() => finished.push('owner'))
    const outcomes = await Promise.allSettled([...flood, owner])
    assert.equal(outcomes.at(-1)?.status, 'fulfilled', 'the priority check was admitted')
    // Second: right after the hash that was running when it came, before the 32 that were waiting.
    assert.equal(finished.indexOf('owner'), 1, finished.join(', '))
  })
})
