// The small constant JSON that the bare Fastify route and Tessera's verify-only route both answer, and its schema.
// Kept apart so that the bare server imports nothing of Tessera.
import { Type } from 'typebox'

export const BENCH_RESPONSE = { ok: true }
export const BenchResponse = Type.Object({ ok: Type.Boolean() })
