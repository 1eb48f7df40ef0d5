// `npm run client:types`: src/schema.ts, the API's types, made by openapi-typescript from docs/openapi.json (the
// document `npm run docs:openapi` writes). A test makes it again and fails when the two differ.
import { writeFileSync } from 'node:fs'
import openapiTS, { astToString } from 'openapi-typescript'

const DOCUMENT = new URL('../docs/openapi.json', import.meta.url)
export const SCHEMA_FILE = new URL('./src/schema.ts', import.meta.url)

const HEADER = `// Made by openapi-typescript from docs/openapi.json (npm run client:types): never edit it by hand.\n\n`

/** The text of src/schema.ts for the document as it is now. */
export async function generateSchema(): Promise<string> {
  return HEADER + astToString(await openapiTS(DOCUMENT))
}

if (import.meta.main) writeFileSync(SCHEMA_FILE, await generateSchema())
