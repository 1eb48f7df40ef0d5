// Failures an operator fixes from one line of text: a bad variable, a signing key that cannot be used, a
// database that cannot be reached or opened, an address the server cannot listen on. `tessera` and the
// server print these without a stack trace; anything else is a bug, and keeps its stack.
import { ConfigError } from './config/load-config.ts'
import { DatabaseFileError, DatabaseUnavailableError } from './db/database-errors.ts'
import { MigrationError } from './db/migrator.ts'
import { KeyStoreError } from './keys/key-store.ts'

export function isOperatorError(error: unknown): error is Error {
  return (
    error instanceof ConfigError ||
    error instanceof KeyStoreError ||
    error instanceof DatabaseUnavailableError ||
    error instanceof DatabaseFileError ||
    error instanceof MigrationError ||
    listenFailure(error) !== undefined
  )
}

/** The one line for an operator error: its message, or for a failed listen what to change. */
export function operatorMessage(error: Error): string {
  return listenFailure(error) ?? error.message
}

const LISTEN_CAUSES: Record<string, string> = {
  EADDRINUSE:
    'the address is already in use (another process listens there): stop it, or choose another port',
  EACCES: 'permission denied (ports below 1024 need privileges): choose a port of 1024 or above',
  EADDRNOTAVAIL: 'no network interface has that address: set HOST to one of this machine, or 0.0.0.0',
}

function listenFailure(error: unknown): string | undefined {
  const { syscall, code, address, port } = (error ?? {}) as {
    syscall?: unknown
    code?: unknown
    address?: unknown
    port?: unknown
  }
  if (syscall !== 'listen' || typeof code !== 'string' || !(code in LISTEN_CAUSES)) return undefined
  // PORT and HOST, or METRICS_PORT and METRICS_HOST: the address tells which listener it was.
  return `Cannot listen on ${String(address)}:${String(port)}: ${LISTEN_CAUSES[code]}`
}
