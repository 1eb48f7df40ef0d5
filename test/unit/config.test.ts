import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError, loadConfig } from '../../src/config/load-config.ts'

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

describe('configuration', () => {
  it('serves a fresh clone with no variables set: 127.0.0.1:8000, ./data/tessera.db, HS256, 15-minute tokens', () => {
    const config = loadConfig({})
    assert.equal(config.host, '127.0.0.1')
    assert.equal(config.port, 8000)
    assert.equal(config.database.url, './data/tessera.db')
    assert.equal(config.jwt.algorithm, 'HS256')
    assert.equal(config.jwt.accessTokenTtlSeconds, 900)
    assert.equal(config.jwt.issuer, 'http://127.0.0.1:8000')
    assert.equal(config.jwt.secret, undefined)
    assert.deepEqual(config.argon2, { memoryKib: 19456, iterations: 2, parallelism: 1 })
  })

  it('reports every bad variable at once, one message each', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      LOG_LEVEL: 'loud',
      JWT_ALGORITHM: 'none',
      ARGON2_MEMORY_KIB: '1024',
    })
    assert.equal(problems.length, 4)
    assert.ok(problems.some((p) => p.startsWith('PORT ')))
    assert.ok(problems.some((p) => p.startsWith('LOG_LEVEL ')))
    assert.ok(problems.some((p) => p.startsWith('JWT_ALGORITHM ')))
    assert.ok(problems.some((p) => p.startsWith('ARGON2_MEMORY_KIB ')))
  })

  it('refuses a JWT_SECRET for an asymmetric algorithm, and a private key for an HMAC one', () => {
    const secret = 'a'.repeat(40)
    assert.match(
      problemsOf({ JWT_ALGORITHM: 'EdDSA', JWT_SECRET: secret })[0] ?? '',
      /JWT_SECRET is for HS256/,
    )
    assert.match(
      problemsOf({ JWT_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----' })[0] ?? '',
      /JWT_PRIVATE_KEY is for EdDSA/,
    )
    assert.match(
      problemsOf({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: '/no/such/file' })[0] ?? '',
      /cannot be read/,
    )
  })

  it('refuses a short secret, and never echoes it', () => {
    const [problem] = problemsOf({ JWT_SECRET: 'hunter2' })
    assert.match(problem ?? '', /at least 32 characters/)
    assert.ok(!problem?.includes('hunter2'))
  })

  it('derives the issuer from PUBLIC_URL, and JWT_ISSUER overrides it', () => {
    assert.equal(
      loadConfig({ PUBLIC_URL: 'https://auth.example.com/' }).jwt.issuer,
      'https://auth.example.com',
    )
    assert.equal(
      loadConfig({ JWT_ISSUER: 'https://issuer.example.com' }).jwt.issuer,
      'https://issuer.example.com',
    )
  })

  it('makes the refresh cookie Secure except for plain-HTTP localhost development, and COOKIE_SECURE overrides', () => {
    assert.equal(loadConfig({}).cookieSecure, false)
    assert.equal(loadConfig({ PUBLIC_URL: 'http://localhost:3000' }).cookieSecure, false)
    assert.equal(loadConfig({ PUBLIC_URL: 'http://auth.example.com' }).cookieSecure, true)
    assert.equal(loadConfig({ PUBLIC_URL: 'https://auth.example.com' }).cookieSecure, true)
    assert.equal(loadConfig({ COOKIE_SECURE: 'true' }).cookieSecure, true)
  })

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ PORT: '' }).port, 8000)
  })
})
