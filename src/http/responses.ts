// Shorthands for route schemas: the error statuses a route can answer, each a problem+json body, and the
// mark of a body that may be left out.
import { Type } from 'typebox'

export const ProblemRef = Type.Ref('Problem')

export function problems(...statuses: number[]): Record<number, typeof ProblemRef> {
  return Object.fromEntries(statuses.map((status) => [status, ProblemRef]))
}

/** On a body schema: the request may have no body at all (validated when it has one). */
export const OPTIONAL_BODY = 'x-optional-body'

/** The body of a 204 answer. */
export const NoContent = Type.Null({ description: 'No content' })
