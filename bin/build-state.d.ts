// Types of bin/build-state.js (plain JavaScript, so that bin/start.js needs no TypeScript), for scripts/build.ts.
export const ROOT: string
export const OUT_DIR: string
export const STAMP: string
export type Stamp = { builtAt: string; inputs: string; files: string[] }
export function inputsDigest(): string
export function readStamp(): Stamp | undefined
export function isFresh(): boolean
