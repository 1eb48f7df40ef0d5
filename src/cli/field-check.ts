// Checks values given on the command line against the schemas POST /auth/register validates with, so that
// the CLI cannot create a user the API would refuse, and the rules live in one place (auth.schemas.ts).
import { Ajv } from 'ajv'
import type { TSchema } from 'typebox'

// As the app's body validator: Ajv counts string length in code points, as JSON Schema specifies.
const ajv = new Ajv({ allErrors: true, strict: false })

/** The rule as the schema describes it to API clients ("8 to 256 characters"), for help and messages. */
export function ruleOf(schema: TSchema): string | undefined {
  return (schema as { description?: string }).description
}

/** A message naming what is wrong, or undefined when the value is valid. */
export function fieldProblem(label: string, schema: TSchema, value: string): string | undefined {
  const validate = ajv.compile(schema)
  if (validate(value)) return undefined
  const reasons = ruleOf(schema) ?? (validate.errors ?? []).map((e) => e.message).join('; ')
  return `${label} is not valid (${reasons})`
}
