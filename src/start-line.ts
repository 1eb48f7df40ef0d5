// The first line a server logs: where it serves, on which database, signing with what, in which mode. An
// operator reading a journal after a restart sees at once which configuration the process actually took.
import { resolve } from 'node:path'
import { type Config, isPostgresUrl } from './config/load-config.ts'
import { sqlitePath } from './db/create-db.ts'
import type { KeyProvision } from './keys/key-store.ts'

export type StartFacts = {
  /** The address Fastify listens on, e.g. http://127.0.0.1:8000. */
  address: string
  config: Config
  signingKey: { algorithm: string; kid: string }
  keyProvision: KeyProvision | undefined
  /** A cluster's primary, which listens through its workers: its line is not a process's own listen line. */
  primary?: boolean
}

const KEY_ORIGIN: Record<KeyProvision, string> = {
  configured: 'from the configuration',
  imported: 'imported from JWT_PRIVATE_KEY at this start',
  generated: 'generated at this start',
  stored: 'stored in the database',
}

/**
 * The database as a log may show it: a PostgreSQL URL without its password or query string (which may
 * carry one), an SQLite path made absolute.
 */
export function databaseForLog(url: string): string {
  if (!isPostgresUrl(url)) {
    const path = sqlitePath(url)
    return `SQLite ${path === ':memory:' ? path : resolve(path)}`
  }
  try {
    const parsed = new URL(url)
    parsed.password = ''
    parsed.search = ''
    return `PostgreSQL ${parsed.href}`
  } catch {
    return 'PostgreSQL (an unparsable URL)'
  }
}

export function startLine({ address, config, signingKey, keyProvision, primary }: StartFacts): string {
  // A process's line begins as Fastify's own does, which scripts and tests wait for (and read its pid from).
  const parts = [
    primary
      ? `Tessera listening at ${address} through its workers`
      : `Server listening at ${address}: Tessera`,
    // Unless it is the default made from HOST and PORT, which says nothing more (and PORT=0 is no port).
    ...(config.publicUrl !== address && config.publicUrl !== `http://${config.host}:${config.port}`
      ? [`public URL ${config.publicUrl}`]
      : []),
    databaseForLog(config.database.url),
    `signing ${signingKey.algorithm} with kid ${signingKey.kid}${keyProvision ? ` (${KEY_ORIGIN[keyProvision]})` : ''}`,
    `NODE_ENV=${config.env}`,
    ...(config.redis ? ['Redis on'] : []),
    ...(config.workers > 1 ? [`${config.workers} workers`] : []),
  ]
  return parts.join(', ')
}
