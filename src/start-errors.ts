// Failures an operator fixes from one line of text: a bad variable, a signing key that cannot be used, a
// database that cannot be reached. `tessera` and the server print these without a stack trace; anything
// else is a bug, and keeps its stack.
import { ConfigError } from './config/load-config.ts'
import { DatabaseUnavailableError } from './db/database-errors.ts'
import { KeyStoreError } from './keys/key-store.ts'

export function isOperatorError(error: unknown): error is Error {
  return (
    error instanceof ConfigError ||
    error instanceof KeyStoreError ||
    error instanceof DatabaseUnavailableError
  )
}
