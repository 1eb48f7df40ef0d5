// A small fetch wrapper for tests against real server processes: JSON in, status, headers and JSON out.
import { randomUUID } from 'node:crypto'
import { type PostJson, registerAndLogIn } from './sign-up.ts'

// biome-ignore lint/suspicious/noExplicitAny: a test reads the fields it expects and asserts on them.
export type Answer = { status: number; headers: Headers; body: any }

export async function call(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} }
}

export const TEST_PASSWORD = 'correct horse battery'

/** Registers a new user on the server at `base` and logs in: the username and both tokens. */
export async function signUp(base: string) {
  const username = `u${randomUUID().slice(0, 8)}`
  const post: PostJson = (path, body) => call(base, 'POST', path, { body })
  const { accessToken, refreshToken } = await registerAndLogIn(post, { username, password: TEST_PASSWORD })
  return { username, access: accessToken, refresh: refreshToken }
}
