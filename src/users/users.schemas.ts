// Request and response bodies of the user endpoints. The User schema is the allow-list of what leaves the
// server: a password hash or any other column not named here is never serialized.
import { Type } from 'typebox'
import { isoTime } from '../lib/clock.ts'
import type { User as DomainUser } from './user.repository.ts'

/** A first or last name. */
export const PersonName = Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\p{Cc}]+$' })

export const Role = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$', examples: ['admin'] })

export const User = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    username: Type.String(),
    firstName: Type.String(),
    lastName: Type.String(),
    roles: Type.Array(Type.String()),
    disabled: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'User' },
)

export const UserIdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

export const UpdateProfileBody = Type.Object(
  { firstName: Type.Optional(PersonName), lastName: Type.Optional(PersonName) },
  { additionalProperties: false, minProperties: 1 },
)

export const AdminUpdateUserBody = Type.Object(
  {
    roles: Type.Optional(Type.Array(Role, { uniqueItems: true, maxItems: 16 })),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const ListUsersQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(
      Type.String({ format: 'uuid', description: 'The `nextCursor` of the previous page' }),
    ),
  },
  { additionalProperties: false },
)

export const UserPage = Type.Object({
  users: Type.Array(User),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page' }),
})

/** The API's view of a user: the only way a user leaves the server. */
export function userResponse(user: Omit<DomainUser, 'tokenVersion'>) {
  return {
    id: user.id,
    username: user.username,
    firstName: user.firstName,
    lastName: user.lastName,
    roles: user.roles,
    disabled: user.disabled,
    createdAt: isoTime(user.createdAt),
    updatedAt: isoTime(user.updatedAt),
  }
}
