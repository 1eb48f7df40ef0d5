// The floor of a login on Node: plain Fastify with one POST /auth/login route that checks the password against
// one argon2id hash of Tessera's parameters (@node-rs/argon2, as Tessera does) and answers a fixed token of a
// login's size. At most `slots` hashes run at once, the others wait their turn, as in Tessera's hash queue (one
// per server core): run more at once on one core and each hash takes longer. The logins section compares
// Tessera's logins with it, beside the hash rate, to show what a login costs Node and Fastify themselves.
// Sent { params, slots, password } over IPC; reports its port and Node's version as bare-server.ts does.
import { type Algorithm, hash, verify } from '@node-rs/argon2'
import Fastify from 'fastify'
import type { Argon2Params } from '../../src/auth/password-hasher.ts'

type Start = { params: Argon2Params; slots: number; password: string }

const { params, slots, password } = await new Promise<Start>((resolve) =>
  process.once('message', (message) => resolve(message as Start)),
)
const stored = await hash(password, {
  algorithm: 2 as Algorithm, // Argon2id: a const enum, which type stripping cannot read (as password-hasher.ts)
  memoryCost: params.memoryKib,
  timeCost: params.iterations,
  parallelism: params.parallelism,
})

let running = 0
const waiting: (() => void)[] = []
async function oneSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= slots) await new Promise<void>((resolve) => waiting.push(resolve))
  else running++
  try {
    return await work()
  } finally {
    const next = waiting.shift()
    if (next) next()
    else running--
  }
}

// About the size of Tessera's answer: an access token, a refresh token, their lifetimes.
const ANSWER = { access_token: 'a'.repeat(600), refresh_token: 'r'.repeat(100), expires_in: 900 }
const Login = {
  type: 'object',
  properties: { username: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 256 } },
  required: ['username', 'password'],
  additionalProperties: false,
} as const
const Answer = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    refresh_token: { type: 'string' },
    expires_in: { type: 'integer' },
  },
} as const

const app = Fastify()
app.post(
  '/auth/login',
  { schema: { body: Login, response: { 200: Answer, 401: { type: 'null' } } } },
  async (request, reply) => {
    const body = request.body as { password: string }
    if (!(await oneSlot(() => verify(stored, body.password)))) return reply.code(401).send()
    return ANSWER
  },
)
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
if (address === null || typeof address === 'string') throw new Error('not listening on a TCP port')
process.once('disconnect', () => process.exit(0))
process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') void app.close().then(() => process.exit(0))
})
process.send?.({ type: 'listening', port: address.port, node: process.version })
