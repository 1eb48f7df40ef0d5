import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { SETTINGS } from '../../src/config/config.schema.ts'
import { ConfigError, loadConfig } from '../../src/config/load-config.ts'
import type { Setting } from '../../src/config/setting.ts'

const DECLARED = Object.entries<Setting>(SETTINGS)

function problemsOf(env: Record<string, string>, options: { serving?: boolean } = {}): string[] {
  try {
    loadConfig(env, options)
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
    const secret = 'a-jwt-secret-for-the-wrong-algorithm-1234'
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
    assert.match(problem ?? '', /at least 32 bytes/)
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
    assert.equal(loadConfig({}).cookies.secure, false)
    assert.equal(loadConfig({ PUBLIC_URL: 'http://localhost:3000' }).cookies.secure, false)
    assert.equal(loadConfig({ PUBLIC_URL: 'http://auth.example.com' }).cookies.secure, true)
    assert.equal(loadConfig({ PUBLIC_URL: 'https://auth.example.com' }).cookies.secure, true)
    assert.equal(loadConfig({ COOKIE_SECURE: 'true' }).cookies.secure, true)
  })

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ PORT: '' }).port, 8000)
  })

  it('reports ACCESS_TOKEN_TTL_SECONDS outside 30..86400 with its range and the value given', () => {
    for (const value of ['29', '86401', '15m', '-60']) {
      assert.deepEqual(problemsOf({ ACCESS_TOKEN_TTL_SECONDS: value }), [
        `ACCESS_TOKEN_TTL_SECONDS must be a whole number from 30 to 86400; got "${value}"`,
      ])
    }
    assert.equal(loadConfig({ ACCESS_TOKEN_TTL_SECONDS: '30' }).jwt.accessTokenTtlSeconds, 30)
    assert.equal(loadConfig({ ACCESS_TOKEN_TTL_SECONDS: '86400' }).jwt.accessTokenTtlSeconds, 86_400)
  })

  it('names every choice when a variable is not one of them', () => {
    assert.deepEqual(problemsOf({ JWT_ALGORITHM: 'none', COOKIE_SECURE: 'yes' }), [
      'JWT_ALGORITHM must be one of HS256, HS384, HS512, EdDSA, ES256, RS256; got "none"',
      'COOKIE_SECURE must be true or false; got "yes"',
    ])
  })

  it('checks every declared variable, even one whose feature is off (REDIS_COMMAND_TIMEOUT_MS without REDIS_URL)', () => {
    assert.deepEqual(problemsOf({ REDIS_COMMAND_TIMEOUT_MS: '0' }), [
      'REDIS_COMMAND_TIMEOUT_MS must be a whole number from 10 to 60000; got "0"',
    ])
  })

  it('reports a bad JWT_ALGORITHM once, not again as a mismatch with the key configured for it', () => {
    assert.equal(
      problemsOf({ JWT_ALGORITHM: 'ed25519', JWT_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----' }).length,
      1,
    )
  })

  it('never echoes a secret: JWT_SECRET, KEY_ENCRYPTION_SECRET, REDIS_URL, a PostgreSQL DATABASE_URL', () => {
    const problems = problemsOf({
      JWT_SECRET: 'short-jwt-secret',
      KEY_ENCRYPTION_SECRET: 'short-encryption-secret',
      REDIS_URL: 'http://default:redis-password@cache:6379',
      DATABASE_URL: 'postgres://app:pg-password@db:54x2/app',
    })
    assert.equal(problems.length, 4)
    for (const problem of problems) {
      assert.doesNotMatch(problem, /short-jwt-secret|short-encryption-secret|redis-password|pg-password/)
    }
    assert.ok(problems.some((p) => p.startsWith('REDIS_URL must be a redis:// or rediss:// URL')))
    assert.ok(problems.some((p) => p.startsWith('KEY_ENCRYPTION_SECRET must be at least 32 bytes')))
  })

  it('marks every variable that holds a password or key as secret', () => {
    const secret = DECLARED.filter(([, setting]) => setting.secret).map(([name]) => name)
    assert.deepEqual(secret.sort(), [
      'DATABASE_URL',
      'JWT_PRIVATE_KEY',
      'JWT_SECRET',
      'JWT_SECRET_PREVIOUS',
      'KEY_ENCRYPTION_SECRET',
      'KEY_ENCRYPTION_SECRET_PREVIOUS',
      'METRICS_TOKEN',
      'PASSWORD_RESET_WEBHOOK_SECRET',
      'PASSWORD_RESET_WEBHOOK_URL',
      'REDIS_URL',
      'WEBHOOK_SECRET',
      'WEBHOOK_URL',
    ])
  })

  it('accepts redis:// and rediss:// URLs with a host, and nothing else, for REDIS_URL', () => {
    assert.equal(loadConfig({ REDIS_URL: 'rediss://cache:6380' }).redis?.url, 'rediss://cache:6380')
    for (const url of ['redis://', 'redis:///0', 'cache:6379']) {
      assert.equal(problemsOf({ REDIS_URL: url }).length, 1, url)
    }
  })

  it('limits password changes per signed-in user (5) and per address (10) by default, each settable', () => {
    const { rateLimits } = loadConfig({})
    assert.equal(rateLimits.passwordChangePerUser, 5)
    assert.equal(rateLimits.passwordChangePerIp, 10)
    const set = loadConfig({
      RATE_LIMIT_PASSWORD_CHANGE_PER_USER: '0',
      RATE_LIMIT_PASSWORD_CHANGE_PER_IP: '1000000',
    }).rateLimits
    assert.equal(set.passwordChangePerUser, 0)
    assert.equal(set.passwordChangePerIp, 1_000_000)
    assert.equal(problemsOf({ RATE_LIMIT_PASSWORD_CHANGE_PER_IP: '1000001' }).length, 1)
  })

  it('refuses a malformed WEBHOOK_EVENTS, WEBHOOK_SECRET, PASSWORD_RESET_WEBHOOK_SECRET or PASSWORD_RESET_PATH by its declared format, once each, secrets unechoed; the README says the format', () => {
    const secretRule =
      'must be `whsec_` followed by the base64 of 24 to 64 random bytes (several separated by spaces); ' +
      'generate one with `echo whsec_$(openssl rand -base64 32)`'
    assert.deepEqual(
      problemsOf({
        WEBHOOK_URL: 'https://hooks.example.com',
        WEBHOOK_SECRET: 'whsec_typed-by-hand',
        WEBHOOK_EVENTS: 'login.failed,User.*',
        PASSWORD_RESET_WEBHOOK_URL: 'https://hooks.example.com/reset',
        PASSWORD_RESET_WEBHOOK_SECRET: `whsec_${randomBytes(16).toString('base64')}`,
        PASSWORD_RESET_PATH: 'reset?next=1',
      }),
      [
        'PASSWORD_RESET_PATH must be a URL path starting with / (no query or fragment); got "reset?next=1"',
        `PASSWORD_RESET_WEBHOOK_SECRET ${secretRule}`,
        `WEBHOOK_SECRET ${secretRule}`,
        'WEBHOOK_EVENTS must be `*` or event types separated by commas (`login.failed,user.*`); got "login.failed,User.*"',
      ],
    )
    const secret = `whsec_${randomBytes(32).toString('base64')}`
    const config = loadConfig({
      WEBHOOK_URL: 'https://hooks.example.com',
      WEBHOOK_SECRET: ` ${secret}  ${secret} `,
      WEBHOOK_EVENTS: ' login.failed , user.* ,',
      PASSWORD_RESET_PATH: '/account/new-password',
    })
    assert.deepEqual(config.webhooks.endpoints[0]?.secrets, [secret, secret])
    assert.deepEqual(config.webhooks.endpoints[0]?.events, ['login.failed', 'user.*'])
    assert.equal(config.recovery.resetPageUrl, 'http://127.0.0.1:8000/account/new-password')
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    for (const name of [
      'WEBHOOK_EVENTS',
      'WEBHOOK_SECRET',
      'PASSWORD_RESET_WEBHOOK_SECRET',
      'PASSWORD_RESET_PATH',
    ]) {
      const setting: Setting = SETTINGS[name as keyof typeof SETTINGS]
      assert.ok(setting.kind === 'string' && setting.format !== undefined, name)
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`))
      assert.ok(row?.includes(setting.format.accepts), name)
    }
  })

  it("every declared integer setting's default lies in its range", () => {
    for (const [name, setting] of DECLARED) {
      if (setting.kind !== 'integer') continue
      assert.ok(setting.min <= setting.max, `${name}: min above max`)
      if (setting.default === undefined) continue
      assert.ok(Number.isInteger(setting.default), `${name}: default ${setting.default} is not whole`)
      assert.ok(
        setting.default >= setting.min && setting.default <= setting.max,
        `${name}: default ${setting.default} outside ${setting.min}..${setting.max}`,
      )
    }
  })

  it("every declared choice setting's default is one of its choices", () => {
    for (const [name, setting] of DECLARED) {
      if (setting.kind !== 'enum' || setting.default === undefined) continue
      assert.ok(setting.choices.includes(setting.default), `${name}: default ${setting.default}`)
    }
  })

  it('accepts each declared default written out, as if it were set', () => {
    const env = Object.fromEntries(
      DECLARED.flatMap(([name, setting]) =>
        setting.default === undefined ? [] : [[name, String(setting.default)]],
      ),
    )
    assert.deepEqual(loadConfig(env), loadConfig({}))
  })

  it("the README table shows each setting's default and what it accepts (range, choices)", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    for (const [name, setting] of DECLARED) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`))
      assert.ok(row, `${name} has no row`)
      if (setting.default !== undefined) assert.ok(row.includes(`| \`${setting.default}\` |`), name)
      if (setting.kind === 'integer') assert.ok(row.includes(`from ${setting.min} to ${setting.max}`), name)
      if (setting.kind === 'enum') {
        for (const choice of setting.choices) assert.ok(row.includes(`\`${choice}\``), `${name}: ${choice}`)
      }
    }
  })

  it('imports nothing above it (only src/lib/ is below config), and src/lib/ imports nothing from config', () => {
    const importsOf = (folder: string) =>
      readdirSync(new URL(`../../src/${folder}/`, import.meta.url)).flatMap((file) => {
        const text = readFileSync(new URL(`../../src/${folder}/${file}`, import.meta.url), 'utf8')
        const specifiers = text.matchAll(
          /^(?:import|export)\s[\w*{}\s,]*?from '(\.[^']+)'|import\('(\.[^']+)'\)/gm,
        )
        return [...specifiers].map((m) => `${file}: ${m[1] ?? m[2]}`)
      })
    const upward = importsOf('config').filter((line) => !/: \.\/|: \.\.\/lib\//.test(line))
    assert.deepEqual(upward, [])
    assert.deepEqual(
      importsOf('lib').filter((line) => line.includes('/config/')),
      [],
    )
  })

  describe('issue 11: hardening from an outside security review', () => {
    /** A secret as a generator makes it: `bytes` random characters of base64url, one byte each. */
    const generated = (bytes: number) => randomBytes(bytes).toString('base64url').slice(0, bytes)

    it('a server with NODE_ENV=production refuses to start without PUBLIC_URL, and says why; other commands run without it', () => {
      const env = { NODE_ENV: 'production', HOST: '0.0.0.0', JWT_SECRET: generated(64) }
      const problems = problemsOf(env, { serving: true })
      assert.equal(problems.length, 1, problems.join('\n'))
      assert.match(problems[0] ?? '', /^PUBLIC_URL must be set with NODE_ENV=production/)
      assert.match(problems[0] ?? '', /issuer/)
      assert.match(problems[0] ?? '', /refresh cookie is Secure/)
      assert.ok(!problems[0]?.includes(env.JWT_SECRET))
      const served = loadConfig({ ...env, PUBLIC_URL: 'https://auth.example.com' }, { serving: true })
      assert.equal(served.jwt.issuer, 'https://auth.example.com')
      assert.equal(served.cookies.secure, true)
      // `tessera migrate` or `user create` in the same environment issue no token: they need no PUBLIC_URL.
      assert.equal(loadConfig(env).env, 'production')
      // Outside production, the default stays, for a developer's first start.
      assert.equal(loadConfig({}, { serving: true }).jwt.issuer, 'http://127.0.0.1:8000')
    })

    it('warns (a property of the loaded config, logged at start) when the issuer is the default and the database is PostgreSQL', () => {
      const postgres = 'postgres://tessera:pg-password@db.internal:5432/tessera'
      const { warnings } = loadConfig({ DATABASE_URL: postgres, PORT: '8001' })
      assert.equal(warnings.length, 1)
      assert.match(warnings[0] ?? '', /Neither PUBLIC_URL nor JWT_ISSUER is set/)
      assert.match(warnings[0] ?? '', /http:\/\/127\.0\.0\.1:8001/)
      assert.match(warnings[0] ?? '', /401/)
      assert.ok(!warnings[0]?.includes('pg-password'))
      for (const env of [
        { DATABASE_URL: postgres, PUBLIC_URL: 'https://auth.example.com' },
        { DATABASE_URL: postgres, JWT_ISSUER: 'https://auth.example.com' },
        {},
        { DATABASE_URL: ':memory:' },
      ]) {
        assert.deepEqual(loadConfig(env).warnings, [], JSON.stringify(env))
      }
    })

    it('requires a JWT_SECRET at least the size of the hash: 32 bytes for HS256, 48 for HS384, 64 for HS512 (RFC 7518, section 3.2)', () => {
      for (const [algorithm, bytes] of [
        ['HS256', 32],
        ['HS384', 48],
        ['HS512', 64],
      ] as const) {
        const enough = generated(bytes)
        assert.equal(loadConfig({ JWT_ALGORITHM: algorithm, JWT_SECRET: enough }).jwt.secret, enough)
        const short = generated(bytes - 1)
        const problems = problemsOf({ JWT_ALGORITHM: algorithm, JWT_SECRET: short })
        assert.equal(problems.length, 1, `${algorithm}: ${problems.join('\n')}`)
        assert.match(problems[0] ?? '', new RegExp(`^JWT_SECRET must be at least ${bytes} bytes`))
        assert.ok(!problems[0]?.includes(short), 'the secret is never echoed')
      }
      assert.match(problemsOf({ JWT_ALGORITHM: 'HS512', JWT_SECRET: generated(50) })[0] ?? '', /RFC 7518/)
    })

    it('counts secrets in bytes of UTF-8, not characters', () => {
      // 16 and 24 two-byte characters: 32 and 48 bytes.
      const latin = 'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØ'
      assert.equal(loadConfig({ JWT_SECRET: latin.slice(0, 16) }).jwt.secret, latin.slice(0, 16))
      assert.equal(loadConfig({ JWT_ALGORITHM: 'HS384', JWT_SECRET: latin }).jwt.secret, latin)
      assert.equal(
        loadConfig({ KEY_ENCRYPTION_SECRET: latin.slice(0, 16) }).keyEncryptionSecret,
        latin.slice(0, 16),
      )
      assert.equal(problemsOf({ JWT_ALGORITHM: 'HS512', JWT_SECRET: latin }).length, 1)
    })

    it('refuses a JWT_SECRET or KEY_ENCRYPTION_SECRET of one repeated character, too few distinct ones, or one short text repeated; says the rule, in the README too, and never echoes it', () => {
      const predictable = [
        'a'.repeat(64),
        'ab'.repeat(32),
        'changeme-'.repeat(5),
        `${'0123456789'.repeat(4)}01`,
        'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2),
      ]
      for (const name of ['JWT_SECRET', 'KEY_ENCRYPTION_SECRET']) {
        for (const secret of predictable) {
          const problems = problemsOf({ [name]: secret })
          assert.equal(problems.length, 1, `${name}=${secret}`)
          assert.equal(
            problems[0]?.split(';')[0],
            `${name} looks predictable: it needs at least 10 distinct characters, not one short text repeated`,
          )
          assert.ok(!problems[0]?.includes(secret.slice(0, 12)), 'the secret is never echoed')
        }
        // What `openssl rand` makes passes.
        for (const secret of [randomBytes(48).toString('base64'), randomBytes(32).toString('hex')]) {
          assert.deepEqual(problemsOf({ [name]: secret }), [], `${name}=${secret}`)
        }
        const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
        const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`))
        assert.match(
          row ?? '',
          /at least 32 bytes \(UTF-8\), with at least 10 distinct characters, not one short text repeated/,
        )
      }
    })
  })
})
