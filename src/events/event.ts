// What a security event is: who did what (the actor), to whom (the subject user), from where (address and user
// agent), with a small typed detail. The context of an action flows from the route to the service as a plain
// parameter, built here from the request.

import type { FastifyRequest } from 'fastify'
import { storableAddress } from '../lib/ids.ts'
import type { EventDetail, EventType } from './event-types.ts'

export const ACTOR_KINDS = ['user', 'admin', 'cli', 'system', 'anonymous'] as const

/** `user`: acting on their own account; `admin`: through an admin route; the others act as nobody in particular. */
export type Actor = { kind: 'user' | 'admin'; id: string } | { kind: 'cli' | 'system' | 'anonymous' }

/** Where a request came from: both absent for the CLI and the system. */
export type Client = { ip?: string | null | undefined; userAgent?: string | null | undefined }

/** Who acts, and from where: what every recorded change is given by its caller. */
export type EventContext = Client & { actor: Actor }

/** The operator's command line. */
export const CLI_CONTEXT: EventContext = { actor: { kind: 'cli' } }
/** The server on its own (a key made at start). */
export const SYSTEM_CONTEXT: EventContext = { actor: { kind: 'system' } }

/** An event as stored and read back. */
export type SecurityEvent = {
  id: string
  type: EventType
  /** Epoch seconds. */
  at: number
  actor: Actor
  /** The user the event is about, if any (not a foreign key: the log outlives deleted users). */
  userId: string | null
  sessionId: string | null
  ip: string | null
  userAgent: string | null
  detail: Record<string, unknown>
}

type EventOf<T extends EventType> = {
  type: T
  context: EventContext
  userId?: string | null
  sessionId?: string | null
} & (Record<string, never> extends EventDetail<T> ? { detail?: EventDetail<T> } : { detail: EventDetail<T> })

/** An event to record: its type's detail is checked by TypeScript; id and time are the recorder's. */
export type NewEvent = { [T in EventType]: EventOf<T> }[EventType]

const MAX_USER_AGENT = 512

/** The client's address and user agent as stored: a valid IP or nothing, the user agent cut to size. */
export function storedClient(client: Client): { ip: string | null; userAgent: string | null } {
  const { ip, userAgent } = client
  return {
    ip: storableAddress(ip ?? undefined),
    userAgent: userAgent ? userAgent.slice(0, MAX_USER_AGENT) : null,
  }
}

/** The address and user agent of a request. */
export function clientOf(request: FastifyRequest): Client {
  return { ip: request.ip, userAgent: request.headers['user-agent'] }
}

/**
 * The context of an authenticated request: the signed-in user acting on their own account (`user`) or through
 * an admin route (`admin`).
 */
export function contextOf(request: FastifyRequest, as: 'user' | 'admin'): EventContext {
  return { actor: { kind: as, id: request.auth.userId }, ...clientOf(request) }
}

/** The context of a request nobody is signed in for. */
export function anonymousContext(request: FastifyRequest): EventContext {
  return { actor: { kind: 'anonymous' }, ...clientOf(request) }
}
