// `tessera openapi [--defaults] [--out FILE]`: the OpenAPI document the server serves at /openapi.json, without
// starting one: for generating a client offline, or linting. `--defaults` gives the document of a server at the
// default settings (what docs/openapi.json holds, `npm run docs:openapi`), whatever the environment says.
import { writeFileSync } from 'node:fs'
import { buildApp } from '../app.ts'
import { loadConfig } from '../config/load-config.ts'
import { createDeps } from '../deps.ts'
import { type Command, type Env, parseCommandArgs, writeLine } from './command.ts'

/** The settings of `--defaults`: nothing but what building the app needs (a throwaway in-memory database). */
const DEFAULTS: Env = { DATABASE_URL: ':memory:', LOG_LEVEL: 'silent' }

/** The OpenAPI document of a server with this environment, as JSON text (two-space indented, and a newline). */
export async function openApiDocument(env: Env): Promise<string> {
  // On a database of its own and without Redis: the document depends on the configuration, never on data, and
  // nothing is written anywhere (no key is made in the configured database, no migration run). As in
  // development, where a throwaway signing key is made in memory: production would insist on a stored one.
  const deps = await createDeps(
    loadConfig({ ...env, ...DEFAULTS, NODE_ENV: 'development', REDIS_URL: undefined }),
  )
  try {
    const app = await buildApp({ deps, logger: false })
    const document = `${JSON.stringify(app.swagger(), null, 2)}\n`
    await app.close()
    return document
  } finally {
    await deps.close()
  }
}

export const openApiDefaults = () => openApiDocument(DEFAULTS)

export const openapiCommand: Command = {
  name: 'openapi',
  summary: 'Print the OpenAPI document of the API (what /openapi.json serves)',
  help: `Usage: tessera openapi [--defaults] [--out FILE]

Prints the OpenAPI 3.1 document the server serves at /openapi.json, built from this environment's settings
(PUBLIC_URL, the rate limits, ...) without starting a server or touching the database.
  --defaults   the document at the default settings, whatever the environment says (docs/openapi.json)
  --out FILE   write it to FILE instead of standard output
`,
  async run(args, io) {
    const { values } = parseCommandArgs('openapi', args, {
      defaults: { type: 'boolean' },
      out: { type: 'string' },
    })
    const document = values.defaults ? await openApiDefaults() : await openApiDocument(io.env)
    if (values.out === undefined) io.stdout.write(document)
    else {
      writeFileSync(values.out, document)
      writeLine(io.stdout, `Wrote ${values.out}`)
    }
    return 0
  },
}
