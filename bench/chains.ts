// Loads whose every request must differ from the one before, built per connection with autocannon's setupClient:
// - refreshChain: POST /auth/refresh spends its refresh token and answers with the next one, so each connection
//   drives a session of its own and presents, each time, the token that the previous response handed out.
// - tokenCycle: a different access token on every request, cycling through more tokens than the server's
//   verified-token cache holds, so that every request pays for the full signature check.
import type { Client, Request } from 'autocannon'
import type { ServerProcess } from './processes.ts'

/** How many verified tokens the server remembers: distinct-token runs cycle through more than this. */
export { VERIFIED_TOKEN_CACHE_SIZE } from '../src/auth/token.service.ts'

export type RefreshChain = {
  sessions: number
  setupClient(client: Client, index: number): void
  /**
   * After a run: the request that was in flight on a connection when autocannon stopped may have spent that
   * session's token without our seeing its successor. Presenting the token again at once (within the server's
   * reuse window, REFRESH_REUSE_WINDOW_SECONDS) gets the session's current token back.
   */
  resync(): Promise<void>
}

async function refresh(server: ServerProcess, token: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${server.port}/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: token }),
  })
  const json = (await response.json()) as { refresh_token?: unknown }
  if (!response.ok || typeof json.refresh_token !== 'string') {
    throw new Error(`resyncing a refresh chain: POST /auth/refresh answered ${response.status}`)
  }
  return json.refresh_token
}

/** One session per connection: the run must have exactly as many connections as there are refresh tokens. */
export function refreshChain(server: ServerProcess, refreshTokens: string[]): RefreshChain {
  const tokens = [...refreshTokens]
  const inFlight = tokens.map(() => false)
  return {
    sessions: tokens.length,
    setupClient(client, index) {
      if (index >= tokens.length) throw new Error(`refresh chain: no session for connection ${index}`)
      const request: Request = {
        method: 'POST',
        path: '/auth/refresh',
        headers: { 'content-type': 'application/json' },
        // Built just before each send.
        setupRequest: (req) => {
          inFlight[index] = true
          return { ...req, body: JSON.stringify({ refresh_token: tokens[index] }) }
        },
        onResponse: (status, body) => {
          inFlight[index] = false
          // On any other status the same token goes again, and the failure is counted by the run.
          if (status === 200) tokens[index] = (JSON.parse(body) as { refresh_token: string }).refresh_token
        },
      }
      client.setRequests([request])
    },
    async resync() {
      await Promise.all(
        tokens.map(async (token, index) => {
          if (!inFlight[index]) return
          tokens[index] = await refresh(server, token)
          inFlight[index] = false
        }),
      )
    },
  }
}

export type TokenCycle = {
  setupClient(client: Client, index: number): void
  /** Responses whose token had been answered fewer than `cacheSize` responses before: they may have hit the cache. */
  nearRepeats(): number
  responses(): number
}

/**
 * Connection i sends tokens i, i + connections, i + 2 x connections, ... in a cycle, continuing in the next run
 * where it stopped, so between two uses of a token the server sees about all the others: with more tokens than
 * the cache holds (it evicts the oldest entry first), every request is a miss.
 */
export function tokenCycle(
  path: string,
  tokens: string[],
  connections: number,
  cacheSize: number,
): TokenCycle {
  const slices = Array.from({ length: connections }, (_, i) =>
    tokens.map((_, t) => t).filter((t) => t % connections === i),
  )
  const nextStart = new Array<number>(connections).fill(0)
  const lastSeen = new Float64Array(tokens.length).fill(Number.NEGATIVE_INFINITY)
  let seen = 0
  let near = 0
  return {
    setupClient(client, index) {
      const slice = slices[index]
      if (!slice || slice.length === 0) throw new Error(`token cycle: no tokens for connection ${index}`)
      const start = nextStart[index] ?? 0
      const requests: Request[] = slice.map((_, offset) => {
        const position = (start + offset) % slice.length
        const token = slice[position] ?? 0
        return {
          method: 'GET',
          path,
          headers: { authorization: `Bearer ${tokens[token]}` },
          onResponse: () => {
            seen++
            if (seen - (lastSeen[token] ?? Number.NEGATIVE_INFINITY) <= cacheSize) near++
            lastSeen[token] = seen
            // The next run skips the request that may be in flight when this one stops: the server may verify
            // it without our seeing the response.
            nextStart[index] = (position + 2) % slice.length
          },
        }
      })
      client.setRequests(requests)
    },
    nearRepeats: () => near,
    responses: () => seen,
  }
}
