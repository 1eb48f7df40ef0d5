// Shorthands for route schemas: the error statuses a route can answer, each a problem+json body.
import { Type } from 'typebox'

export const ProblemRef = Type.Ref('Problem')

export function problems(...statuses: number[]): Record<number, typeof ProblemRef> {
  return Object.fromEntries(statuses.map((status) => [status, ProblemRef]))
}
