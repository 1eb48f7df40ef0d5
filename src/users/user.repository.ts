// Reads and writes users. Returns domain objects (camelCase, booleans, role arrays), never raw rows.
import type { Selectable } from 'kysely'
import type { Db, UsersTable } from '../db/database.ts'

export type User = {
  id: string
  username: string
  firstName: string
  lastName: string
  roles: string[]
  disabled: boolean
  tokenVersion: number
  createdAt: number
  updatedAt: number
}

export type NewUser = Omit<User, 'tokenVersion' | 'disabled'> & { passwordHash: string; usernameKey: string }

export type UserChanges = Partial<Pick<User, 'firstName' | 'lastName' | 'roles' | 'disabled'>>

export interface UserRepository {
  insert(user: NewUser): Promise<User>
  findById(id: string): Promise<User | undefined>
  findCredentials(usernameKey: string): Promise<{ user: User; passwordHash: string } | undefined>
  findPasswordHash(id: string): Promise<string | undefined>
  /** Users in creation order, after the given id. */
  list(options: { limit: number; after?: string | undefined }): Promise<User[]>
  update(id: string, changes: UserChanges, now: number): Promise<User | undefined>
  /** Replaces the hash without revoking tokens (a rehash on login). */
  setPasswordHash(id: string, passwordHash: string, now: number): Promise<void>
  /** Replaces the hash and bumps the token version, so that every earlier access token is refused. */
  changePassword(id: string, passwordHash: string, now: number): Promise<User | undefined>
  delete(id: string): Promise<boolean>
}

type Row = Selectable<UsersTable>

const USER_COLUMNS = [
  'id',
  'username',
  'first_name',
  'last_name',
  'roles',
  'disabled',
  'token_version',
  'created_at',
  'updated_at',
] as const

function toUser(row: Pick<Row, (typeof USER_COLUMNS)[number]>): User {
  return {
    id: row.id,
    username: row.username,
    firstName: row.first_name,
    lastName: row.last_name,
    roles: JSON.parse(row.roles) as string[],
    disabled: Number(row.disabled) === 1,
    tokenVersion: Number(row.token_version),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  }
}

export function createUserRepository(db: Db): UserRepository {
  return {
    async insert(user) {
      const row = {
        id: user.id,
        username: user.username,
        username_key: user.usernameKey,
        first_name: user.firstName,
        last_name: user.lastName,
        password_hash: user.passwordHash,
        roles: JSON.stringify(user.roles),
        disabled: 0,
        token_version: 0,
        created_at: user.createdAt,
        updated_at: user.updatedAt,
      }
      await db.insertInto('users').values(row).execute()
      return toUser(row)
    },

    async findById(id) {
      const row = await db.selectFrom('users').select(USER_COLUMNS).where('id', '=', id).executeTakeFirst()
      return row && toUser(row)
    },

    async findCredentials(usernameKey) {
      const row = await db
        .selectFrom('users')
        .select([...USER_COLUMNS, 'password_hash'])
        .where('username_key', '=', usernameKey)
        .executeTakeFirst()
      return row && { user: toUser(row), passwordHash: row.password_hash }
    },

    async findPasswordHash(id) {
      const row = await db.selectFrom('users').select('password_hash').where('id', '=', id).executeTakeFirst()
      return row?.password_hash
    },

    async list({ limit, after }) {
      let query = db.selectFrom('users').select(USER_COLUMNS).orderBy('id').limit(limit)
      if (after !== undefined) query = query.where('id', '>', after)
      return (await query.execute()).map(toUser)
    },

    async update(id, changes, now) {
      const values: Partial<Row> = { updated_at: now }
      if (changes.firstName !== undefined) values.first_name = changes.firstName
      if (changes.lastName !== undefined) values.last_name = changes.lastName
      if (changes.roles !== undefined) values.roles = JSON.stringify(changes.roles)
      if (changes.disabled !== undefined) values.disabled = changes.disabled ? 1 : 0
      const result = await db.updateTable('users').set(values).where('id', '=', id).executeTakeFirst()
      return result.numUpdatedRows > 0n ? this.findById(id) : undefined
    },

    async setPasswordHash(id, passwordHash, now) {
      await db
        .updateTable('users')
        .set({ password_hash: passwordHash, updated_at: now })
        .where('id', '=', id)
        .execute()
    },

    async changePassword(id, passwordHash, now) {
      const result = await db
        .updateTable('users')
        .set((eb) => ({
          password_hash: passwordHash,
          token_version: eb('token_version', '+', 1),
          updated_at: now,
        }))
        .where('id', '=', id)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n ? this.findById(id) : undefined
    },

    async delete(id) {
      const result = await db.deleteFrom('users').where('id', '=', id).executeTakeFirst()
      return result.numDeletedRows > 0n
    },
  }
}
