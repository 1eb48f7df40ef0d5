// Users and tokens for tests, created through the HTTP API as a client would (admins through the service,
// as the CLI does, since no endpoint grants the first admin role).
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import type { Deps } from '../../src/deps.ts'
import { CLI_CONTEXT } from '../../src/events/event.ts'
import { type PostJson, registerAndLogIn } from './sign-up.ts'

let counter = 0

export type TestUser = { id: string; username: string; password: string; token: string }

export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` }
}

export function uniqueUsername(prefix = 'user'): string {
  counter += 1
  return `${prefix}${counter}_${process.pid}`
}

export async function login(app: FastifyInstance, username: string, password: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
  assert.equal(response.statusCode, 200, response.body)
  return response.json().access_token
}

export async function registerUser(
  app: FastifyInstance,
  fields: Partial<{ username: string; password: string; firstName: string; lastName: string }> = {},
): Promise<TestUser> {
  const username = fields.username ?? uniqueUsername()
  const password = fields.password ?? 'correct horse battery'
  const { id, accessToken } = await registerAndLogIn(injected(app), { ...fields, username, password })
  return { id, username, password, token: accessToken }
}

/** A POST through `app.inject`, for registerAndLogIn. */
const injected =
  (app: FastifyInstance): PostJson =>
  async (url, payload) => {
    const response = await app.inject({ method: 'POST', url, payload })
    return { status: response.statusCode, body: response.json() }
  }

export async function createAdmin(app: FastifyInstance, deps: Deps): Promise<TestUser> {
  const username = uniqueUsername('chief')
  const password = 'admin password 1'
  const user = await deps.services.auth.register(
    { username, password, firstName: 'Grace', lastName: 'Hopper' },
    { roles: ['admin', 'user'], context: CLI_CONTEXT },
  )
  return { id: user.id, username, password, token: await login(app, username, password) }
}

/** Asserts an RFC 9457 problem response with the given status and code, and returns its body. */
export function assertProblem(
  response: { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  code: string,
) {
  assert.equal(response.statusCode, status, response.body)
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
  const body = JSON.parse(response.body)
  assert.equal(body.status, status)
  assert.equal(body.code, code)
  assert.equal(body.type, `urn:tessera:problem:${code}`)
  assert.equal(typeof body.title, 'string')
  assert.ok(!/\bat .*\.ts:\d+/.test(response.body), 'a problem never carries a stack trace')
  return body
}
