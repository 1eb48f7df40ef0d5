// Request and response bodies of the user endpoints. The User schema is the allow-list of what leaves the
// server: a password hash or any other column not named here is never serialized.
import { Type } from 'typebox'
import { isoTime } from '../lib/clock.ts'
import type { User as DomainUser } from './user.repository.ts'

// What a name may not hold (issue 11): control and format characters (U+202E right-to-left override, U+200B
// zero-width space, U+00AD soft hyphen...), private-use and lone surrogate code points, line and paragraph
// separators, and the characters that show as nothing though Unicode counts them as letters or marks (the
// Hangul fillers, U+034F, U+17B4-5, U+2800 Braille blank). Variation selectors stay: they pick a glyph of the
// character before them, as some Japanese family names need.
export const NOT_IN_NAMES =
  '\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}\\p{Zl}\\p{Zp}\\u034F\\u115F\\u1160\\u17B4\\u17B5\\u2800\\u3164\\uFFA0'

/** A first or last name. */
export const PersonName = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: `^[^${NOT_IN_NAMES}]+$`,
  description:
    '1 to 100 characters, without control, format (such as U+202E or U+200B) or other invisible characters',
})

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
    externalId: Type.Union([Type.String(), Type.Null()], {
      description:
        'The id the user had in the system they were imported from (`tessera users import`), or null',
    }),
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

// `limit` may be left out, so the schema requires nothing; validation fills in its default, so handlers
// (whose type this also gives) always see a number.
export const ListUsersQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Users per page' }),
    cursor: Type.Optional(
      Type.String({ format: 'uuid', description: 'The `nextCursor` of the previous page' }),
    ),
    externalId: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description:
          'Only the user with this external id (the id they had in the system they were imported from): a page of one, or none',
      }),
    ),
  },
  { additionalProperties: false, required: [] },
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
    externalId: user.externalId,
  }
}
