// The small constant JSON that the bare Fastify route and Tessera's verify-only route both answer, and its schema.
// Kept apart so that the bare server imports nothing of Tessera; also what the bench and its Tessera server agree on.
import { Type } from 'typebox'

export const BENCH_RESPONSE = { ok: true }
export const BenchResponse = Type.Object({ ok: Type.Boolean() })

/** The most tokens or sessions one POST /bench/mint or /bench/sessions issues. */
export const MINT_BATCH = 2_000
