// The failure of a key or secret an operator configured or stored: one line, no stack trace (start-errors.ts).
// A file of its own so that key-encryption.ts, below key-store.ts, can throw it too.
export class KeyStoreError extends Error {
  override name = 'KeyStoreError'
}
