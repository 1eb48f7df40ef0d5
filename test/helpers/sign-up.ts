// How a client signs up (register, then log in), written once for the in-process tests (app.inject, in
// fixtures.ts), the tests against server processes (fetch, in http-client.ts) and the bench (bench/lib/tessera.ts):
// each passes the way it posts. bench/ imports this file, so it imports nothing, of test/ or anything else.

/** A POST of a JSON body, however the caller reaches the server: the status and the parsed answer. */
export type PostJson = (
  path: string,
  body: Record<string, string>,
) => Promise<{ status: number; body: unknown }>

export type SignUp = { username: string; password: string; firstName?: string; lastName?: string }

/**
 * Registers `user` (named Ada Lovelace unless it says otherwise) and logs it in: its id and the login's tokens.
 * Throws, with the answer, unless registration answers 201 and the login 200.
 */
export async function registerAndLogIn(
  post: PostJson,
  user: SignUp,
): Promise<{ id: string; accessToken: string; refreshToken: string }> {
  const { username, password } = user
  const created = await expect(post, 201, '/auth/register', {
    username,
    password,
    firstName: user.firstName ?? 'Ada',
    lastName: user.lastName ?? 'Lovelace',
  })
  const tokens = await expect(post, 200, '/auth/login', { username, password })
  return {
    id: String(created.id),
    accessToken: String(tokens.access_token),
    refreshToken: String(tokens.refresh_token),
  }
}

async function expect(post: PostJson, status: number, path: string, body: Record<string, string>) {
  const answer = await post(path, body)
  if (answer.status !== status) {
    throw new Error(`POST ${path} answered ${answer.status}, not ${status}: ${JSON.stringify(answer.body)}`)
  }
  return answer.body as Record<string, unknown>
}
