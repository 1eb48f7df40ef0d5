// Issue 18: `tessera user import` run as an operator runs it (a real process), on a database built with the Flask
// tutorial's exact model, and on CSV and JSON Lines; then the imported users sign in over HTTP with the
// passwords they had, and an admin finds them by their old id (GET /users?externalId=).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, before, describe, it } from 'node:test'
import { hash as argon2Hash } from '@node-rs/argon2'
import { hashSync } from '@node-rs/bcrypt'
import { loadConfig } from '../../src/config/load-config.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { runTessera } from '../helpers/cli-process.ts'
import { bearer, createAdmin, login } from '../helpers/fixtures.ts'
import { sharedTestDatabases } from '../helpers/test-database.ts'

const PYTHON = '/usr/bin/python3'
const hasFlaskSqlAlchemy =
  existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import flask_sqlalchemy, bcrypt']).status === 0

// The tutorial's app, its model as written there: Flask-SQLAlchemy names the table `user`, and Flask-Bcrypt's
// generate_password_hash is bcrypt.hashpw with gensalt(12), decoded to text.
const TUTORIAL_APP = `
import sys, bcrypt
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config['SQLALCHEMY_DATABASE_URI'] = 'sqlite:///' + sys.argv[1]
db = SQLAlchemy(app)

class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    firstName = db.Column(db.String(100))
    lastName = db.Column(db.String(100))
    username = db.Column(db.String(50), unique=True)
    password = db.Column(db.String(100))

def generate_password_hash(password):
    return bcrypt.hashpw(password.encode('utf-8'), bcrypt.gensalt(12)).decode('utf-8')

with app.app_context():
    db.create_all()
    for id, first, last, username, password in [
        (1, 'Ada', 'Lovelace', 'ada', 'analytical engine 1843'),
        (2, 'Grace', 'Hopper', 'grace', 'cobol compiler 1959'),
        (3, 'Ada', 'Again', 'ADA', 'another password 1'),
        (4, 'Bad', 'Name', 'bad name!', 'another password 2'),
        (5, 'Linus', 'T', 'Linus', 'another password 3'),
    ]:
        db.session.add(User(id=id, firstName=first, lastName=last, username=username,
                            password=generate_password_hash(password)))
    db.session.add(User(id=6, firstName='Plain', lastName='Text', username='plain', password='not a hash'))
    db.session.commit()
`

/**
 * A bcrypt hash as Flask-Bcrypt writes it: @node-rs/bcrypt writes the `$2y$` prefix, Python's bcrypt `$2b$`, for
 * the same algorithm and the same hash after the prefix.
 */
const bcryptHash = (password: string, cost: number) => hashSync(password, cost).replace(/^\$2y\$/, '$2b$')

/** The same table without Python: the DDL SQLAlchemy emits, and bcrypt hashes made by @node-rs/bcrypt. */
function tutorialDatabaseWithoutPython(path: string): void {
  const db = new DatabaseSync(path)
  db.exec(`CREATE TABLE user (id INTEGER NOT NULL, "firstName" VARCHAR(100), "lastName" VARCHAR(100),
    username VARCHAR(50), password VARCHAR(100), PRIMARY KEY (id), UNIQUE (username))`)
  const insert = db.prepare('insert into user values (?, ?, ?, ?, ?)')
  insert.run(1, 'Ada', 'Lovelace', 'ada', bcryptHash('analytical engine 1843', 12))
  insert.run(2, 'Grace', 'Hopper', 'grace', bcryptHash('cobol compiler 1959', 12))
  insert.run(3, 'Ada', 'Again', 'ADA', bcryptHash('another password 1', 4))
  insert.run(4, 'Bad', 'Name', 'bad name!', bcryptHash('another password 2', 4))
  insert.run(5, 'Linus', 'T', 'Linus', bcryptHash('another password 3', 4))
  insert.run(6, 'Plain', 'Text', 'plain', 'not a hash')
  db.close()
}

type Report = {
  read: number
  imported: number
  alreadyImported: number
  skipped: number
  skippedByReason: Record<string, number>
  skips: { line: number; externalId: string | null; username: string | null; reason: string }[]
}

describe('tessera user import (issue 18)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-import-'))
  const databases = sharedTestDatabases()
  let databaseUrl: string
  let t: TestApp
  let adminToken: string
  const flaskDb = join(dir, 'app.db')

  const tessera = (args: string[], env: Record<string, string> = {}) =>
    runTessera(args, {
      cwd: dir,
      env: { NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: databaseUrl, ...env },
    })
  const importJson = async (args: string[], env: Record<string, string> = {}) => {
    const run = await tessera(['user', 'import', ...args, '--json'], env)
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stderr, '', 'no progress line when stderr is not a terminal')
    return JSON.parse(run.stdout) as Report
  }
  const byExternalId = async (externalId: string) => {
    const response = await t.app.inject({
      method: 'GET',
      url: `/users?externalId=${encodeURIComponent(externalId)}`,
      headers: bearer(adminToken),
    })
    assert.equal(response.statusCode, 200, response.body)
    return (response.json() as { users: { id: string; username: string; externalId: string | null }[] }).users
  }
  const userCount = async () =>
    Number(
      (
        await t.deps.db
          .selectFrom('users')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirst()
      )?.n,
    )

  before(async () => {
    databaseUrl = await databases.url(join(dir, 'tessera.db'))
    t = await buildTestApp({ env: { DATABASE_URL: databaseUrl } })
    adminToken = (await createAdmin(t.app, t.deps)).token
    // A Tessera user already has the name the Flask app's "Linus" normalizes to.
    await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: 'linus', password: 'kernel hacker 1991', firstName: 'L', lastName: 'T' },
    })
    if (hasFlaskSqlAlchemy) {
      const made = spawnSync(PYTHON, ['-c', TUTORIAL_APP, flaskDb], { encoding: 'utf8' })
      assert.equal(made.status, 0, made.stderr)
    } else tutorialDatabaseWithoutPython(flaskDb)
  })

  after(async () => {
    await t?.close()
    await databases.dropAll()
    rmSync(dir, { recursive: true, force: true })
  })

  it(`checks the Flask tutorial's database with --dry-run and writes nothing (model from ${hasFlaskSqlAlchemy ? 'Flask-SQLAlchemy' : 'its DDL'})`, async () => {
    const before = await userCount()
    const report = await importJson([flaskDb, '--dry-run'])
    assert.equal(report.read, 6)
    assert.equal(report.imported, 2)
    assert.equal(await userCount(), before)
    assert.deepEqual(await byExternalId('1'), [])
  })

  it('imports it, saying which rows it skipped and why', async () => {
    const report = await importJson([flaskDb])
    assert.equal(report.imported, 2)
    assert.equal(report.alreadyImported, 0)
    const reasons = Object.fromEntries(report.skips.map((skip) => [skip.externalId, skip.reason]))
    assert.deepEqual(reasons, {
      '3': 'duplicate_username',
      '4': 'invalid_username',
      '5': 'username_taken',
      '6': 'invalid_hash',
    })
    const events = await t.deps.db
      .selectFrom('events')
      .selectAll()
      .where('type', '=', 'users.imported')
      .execute()
    assert.equal(events.length, 1, 'one summary event, not one per user')
    assert.deepEqual(JSON.parse(String(events[0]?.detail)), {
      source: 'sqlite',
      imported: 2,
      alreadyImported: 0,
      skipped: 4,
    })
  })

  it('lets the users sign in with their Flask passwords, and upgrades their bcrypt hashes to argon2id', async () => {
    const [ada] = await byExternalId('1')
    assert.equal(ada?.username, 'ada')
    assert.equal(ada?.externalId, '1')
    const hashOf = () => t.deps.repositories.users.findPasswordHash(ada?.id ?? '')
    assert.match((await hashOf()) ?? '', /^\$2b\$12\$/)
    const token = await login(t.app, 'ada', 'analytical engine 1843')
    assert.match((await hashOf()) ?? '', /^\$argon2id\$/)
    await login(t.app, 'Ada', 'analytical engine 1843')
    const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })
    assert.equal(me.json().externalId, '1')
    await login(t.app, 'grace', 'cobol compiler 1959')
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: 'grace', password: 'cobol compiler 1960' },
    })
    assert.equal(wrong.statusCode, 401)
  })

  it('imports nothing twice when run again', async () => {
    const before = await userCount()
    const report = await importJson([flaskDb])
    assert.equal(report.imported, 0)
    assert.equal(report.alreadyImported, 2)
    assert.equal(await userCount(), before)
  })

  it('reads CSV and JSON Lines, keeps argon2 hashes, and refuses ids repeated in the source', async () => {
    const csv = join(dir, 'users.csv')
    writeFileSync(
      csv,
      `user_id,username,password,firstName,lastName\ncsv-1,maria,${bcryptHash('csv password 1', 4)},Maria,"Curie, née Skłodowska"\ncsv-1,pierre,${bcryptHash('csv password 2', 4)},Pierre,Curie\n`,
    )
    const csvReport = await importJson([csv, '--id-column', 'user_id'])
    assert.equal(csvReport.imported, 1)
    assert.deepEqual(
      csvReport.skips.map((skip) => [skip.line, skip.reason]),
      [[3, 'duplicate_external_id']],
    )
    const jsonl = join(dir, 'users.jsonl')
    const argon2 = await argon2Hash('jsonl password 1', { memoryCost: 1024, timeCost: 1, algorithm: 2 })
    writeFileSync(
      jsonl,
      `${JSON.stringify({ id: 'j-1', username: 'emmy', password: argon2 })}\nnot json\n${JSON.stringify({ id: 'j-3', username: 'ΑΒΓ', password: bcryptHash('x', 4) })}\n`,
    )
    const jsonlReport = await importJson([jsonl])
    assert.equal(jsonlReport.imported, 2)
    assert.deepEqual(
      jsonlReport.skips.map((skip) => [skip.line, skip.reason]),
      [[2, 'missing_field']],
    )
    await login(t.app, 'maria', 'csv password 1')
    await login(t.app, 'emmy', 'jsonl password 1')
    assert.equal((await byExternalId('j-1'))[0]?.username, 'emmy')
    const text = await tessera(['users', 'import', jsonl])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /Imported 0 users .*\nAlready imported .*: 2\nSkipped: 1\n {2}missing_field: 1/)
  })

  it('skips hashes that ask more than a check may spend, ids too long or with control characters, and lets a later row have the name of a row skipped for its id', async () => {
    const source = join(dir, 'hostile.jsonl')
    const hash = bcryptHash('hostile password', 4)
    const salt = 'c2FsdHNhbHRzYWx0c2FsdA'
    const digest = 'aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA'
    const rows = [
      { id: 'h-1', username: 'slowpoke', password: `$2b$31$${'a'.repeat(53)}` },
      { id: 'h-2', username: 'bigmem', password: `$argon2id$v=19$m=8000000,t=1,p=1$${salt}$${digest}` },
      { id: 'x'.repeat(129), username: 'longid', password: hash },
      { id: 'ctl\u001b[2J', username: 'ctlid', password: hash },
      { id: 'h-5', username: 'first', password: hash },
      { id: 'h-5', username: 'bob', password: hash },
      { id: 'h-7', username: 'bob', password: hash },
    ]
    writeFileSync(source, `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`)
    const report = await importJson([source])
    assert.deepEqual(
      report.skips.map((skip) => [skip.line, skip.reason]),
      [
        [1, 'invalid_hash'],
        [2, 'invalid_hash'],
        [3, 'invalid_external_id'],
        [4, 'invalid_external_id'],
        [6, 'duplicate_external_id'],
      ],
    )
    assert.equal(report.imported, 2, 'first, and bob from line 7')
    await login(t.app, 'bob', 'hostile password')
    // The text report escapes what a row could use to clear the terminal or forge a line.
    const text = await tessera(['user', 'import', '--dry-run', source])
    assert.ok(!text.stdout.includes('\u001b'), 'no raw escape character')
    assert.match(text.stdout, /id ctl\\u001b\[2J/)
  })

  it('imports, registers and signs in users whose usernames are email addresses, with USERNAME_PATTERN', async () => {
    const emails = join(dir, 'emails.jsonl')
    const long = `${'a'.repeat(40)}@example.com`
    writeFileSync(
      emails,
      [
        { id: 'e-1', username: 'Alan.Turing@Example.com', password: bcryptHash('enigma machine 1', 4) },
        { id: 'e-2', username: long, password: bcryptHash('enigma machine 2', 4) },
        { id: 'e-3', username: 'аlan.turing@example.com', password: bcryptHash('enigma machine 3', 4) },
        { id: 'e-4', username: 'ALAN.TURING@example.com', password: bcryptHash('enigma machine 4', 4) },
      ]
        .map((row) => JSON.stringify(row))
        .join('\n'),
    )
    const refused = await importJson([emails, '--dry-run'])
    assert.equal(refused.skippedByReason.invalid_username, 4, 'the default rule refuses email addresses')

    const policy = { USERNAME_PATTERN: '[^@\\s]+@[^@\\s]+\\.[^@\\s]+', USERNAME_MAX_LENGTH: '254' }
    const report = await importJson([emails], policy)
    assert.equal(report.imported, 2)
    assert.deepEqual(
      report.skips.map((skip) => [skip.externalId, skip.reason]),
      // The Cyrillic "а" mixes scripts; the upper-case one is the first, once case-folded.
      [
        ['e-3', 'invalid_username'],
        ['e-4', 'duplicate_username'],
      ],
    )
    const emailApp = await buildTestApp({ env: { DATABASE_URL: databaseUrl, ...policy } })
    try {
      await login(emailApp.app, 'alan.turing@example.com', 'enigma machine 1')
      await login(emailApp.app, long, 'enigma machine 2')
      const registered = await emailApp.app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: {
          username: 'kurt@goedel.at',
          password: 'incompleteness 1931',
          firstName: 'K',
          lastName: 'G',
        },
      })
      assert.equal(registered.statusCode, 201, registered.body)
      const openapi = (await emailApp.app.inject({ method: 'GET', url: '/openapi.json' })).json()
      const username =
        openapi.components.schemas.RegisterBody?.properties?.username ??
        openapi.paths['/auth/register'].post.requestBody.content['application/json'].schema.properties
          .username
      assert.equal(username.pattern, `^(?:${policy.USERNAME_PATTERN})$`)
      assert.equal(username.maxLength, 254)
    } finally {
      await emailApp.close()
    }
    // The default app still refuses them at registration.
    const refusedHere = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: 'emil@post.de', password: 'incompleteness 1931', firstName: 'E', lastName: 'P' },
    })
    assert.equal(refusedHere.statusCode, 400)
  })

  it('refuses to start on a USERNAME_PATTERN that does not compile, escapes its anchors, or may backtrack without end', () => {
    for (const pattern of [
      '[a-z',
      'a)|(b',
      '(a+)+@x',
      '(a|a)*',
      '(?:a|a)+',
      '(\\w|[a-z.])+@[a-z]+\\.[a-z]+',
    ]) {
      assert.throws(
        () => loadConfig({ NODE_ENV: 'test', USERNAME_PATTERN: pattern }),
        /USERNAME_PATTERN must be/,
      )
    }
    assert.doesNotThrow(() => loadConfig({ NODE_ENV: 'test', USERNAME_PATTERN: '[^@\\s]+@[^@\\s]+' }))
  })

  it('exits 2 on a source whose format it cannot tell, and 1 on a missing table', async () => {
    const unknown = await tessera(['user', 'import', join(dir, 'users.txt')])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /--format/)
    const table = await tessera(['user', 'import', flaskDb, '--table', 'users'])
    assert.equal(table.code, 1)
    assert.match(table.stderr, /has no table "users"/)
  })
})
