// Reads and writes users. Returns domain objects (camelCase, booleans, role arrays), never raw rows. No write
// leaves the database without an enabled admin once it has one (issue 11): see `update` and `delete`.
import { type Expression, type Kysely, PostgresAdapter, type Selectable, type SqlBool, sql } from 'kysely'
import type { Database, Db, UsersTable } from '../db/database.ts'
import { inTransaction } from '../db/transact.ts'

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
  /** The id the user had in the system they were imported from (issue 18), or null. */
  externalId: string | null
}

export type NewUser = Omit<User, 'tokenVersion' | 'disabled' | 'externalId'> & {
  passwordHash: string
  usernameKey: string
  externalId?: string | null
}

export type UserChanges = Partial<Pick<User, 'firstName' | 'lastName' | 'roles' | 'disabled'>>

/** A user as the write found it and as it left it, read in its transaction: what exactly it changed. */
export type UserUpdate = { before: User; after: User }

/** What a write answers when it would have left no enabled admin, and so was not made. */
export const LAST_ADMIN = 'last_admin'
export type LastAdmin = typeof LAST_ADMIN

export const ADMIN_ROLE = 'admin'

export interface UserRepository {
  insert(user: NewUser): Promise<User>
  findById(id: string): Promise<User | undefined>
  findByUsernameKey(usernameKey: string): Promise<User | undefined>
  findByExternalId(externalId: string): Promise<User | undefined>
  /** Inserts many users in one statement (an import's batch); within the caller's transaction when given one. */
  insertMany(users: NewUser[]): Promise<void>
  /** Of these username keys and external ids, those a user already has (an import's batch, checked at once). */
  findTaken(
    usernameKeys: string[],
    externalIds: string[],
  ): Promise<{ usernameKeys: Set<string>; externalIds: Set<string> }>
  findCredentials(usernameKey: string): Promise<{ user: User; passwordHash: string } | undefined>
  findPasswordHash(id: string): Promise<string | undefined>
  /** Users in creation order, after the given id. */
  list(options: { limit: number; after?: string | undefined }): Promise<User[]>
  /**
   * The user before and after; undefined for an unknown user; LAST_ADMIN, changing nothing, when the user is
   * the last enabled admin and the change would take that away (roles without admin, or disabled).
   */
  update(id: string, changes: UserChanges, now: number): Promise<UserUpdate | undefined | LastAdmin>
  /** Replaces the hash without revoking tokens (a rehash on login). */
  setPasswordHash(id: string, passwordHash: string, now: number): Promise<void>
  /**
   * Replaces the hash and bumps the token version, so that every earlier access token is refused. Undefined
   * when there is no such user, or, with `ifTokenVersion`, when its token version is no longer that one.
   */
  changePassword(
    id: string,
    passwordHash: string,
    now: number,
    ifTokenVersion?: number,
  ): Promise<User | undefined>
  /** The user deleted; undefined for an unknown user; LAST_ADMIN, deleting nothing, for the last enabled admin. */
  delete(id: string): Promise<User | undefined | LastAdmin>
}

type Row = Selectable<UsersTable>

/** A condition on the row being written: true unless writing it would leave no enabled admin. */
type KeepsAnAdmin = Expression<SqlBool>

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
  'external_id',
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
    externalId: row.external_id,
  }
}

function toRow(user: NewUser) {
  return {
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
    external_id: user.externalId ?? null,
  }
}

// Roles are a JSON array of names matching ^[a-z][a-z0-9_-]*$, so the quoted name matches that role only.
const ADMIN_ROLE_LIKE = `%"${ADMIN_ROLE}"%`

/** The row of `table` (`users`, or its alias `other`) is an enabled admin. */
const isEnabledAdmin = (table: 'users' | 'other') =>
  sql<SqlBool>`(${sql.ref(`${table}.disabled`)} = 0 and ${sql.ref(`${table}.roles`)} like ${ADMIN_ROLE_LIKE})`

/** Whether a change can take away the admin role or enabled state of whoever it is made to. */
function canRemoveAdmin(changes: UserChanges): boolean {
  return (changes.roles !== undefined && !changes.roles.includes(ADMIN_ROLE)) || changes.disabled === true
}

/** The key of the advisory lock that serializes changes guarded by the last-admin rule (any constant). */
export const ADMIN_GUARD_LOCK = 0x7e55e7a

export function createUserRepository(db: Db): UserRepository {
  // PostgreSQL runs transactions side by side: without locks, two that each demote one of two admins both see
  // the other's admin still enabled (write skew), and both commit. Each takes one advisory lock first, so the
  // second waits for the first and then counts what it committed. SQLite runs one writer at a time, and a
  // write statement takes the lock before it reads: the guarded write is enough.
  const locksRows = db.getExecutor().adapter instanceof PostgresAdapter

  /**
   * Runs `write` (one UPDATE or DELETE of user `id`, narrowed by `keepsAnAdmin`) in a transaction that makes
   * the check and the write one step. The write matches no row when the user is an enabled admin and no other
   * enabled admin exists; then LAST_ADMIN, or undefined when there is no such user at all. Within the
   * caller's transaction, when it runs in one (a unit of work that records events with the change).
   */
  async function guarded<T>(
    id: string,
    write: (trx: Kysely<Database>, keepsAnAdmin: KeepsAnAdmin) => Promise<T | undefined>,
  ): Promise<T | undefined | LastAdmin> {
    return inTransaction(db, async (trx) => {
      // One transaction-scoped advisory lock for every guarded change: locking the admins' rows instead
      // deadlocked when a target stopped being an admin between the lock and the write (found in review).
      if (locksRows) await sql`select pg_advisory_xact_lock(${ADMIN_GUARD_LOCK})`.execute(trx)
      const others = trx
        .selectFrom('users as other')
        .select('other.id')
        .where('other.id', '<>', id)
        .where(isEnabledAdmin('other'))
      const done = await write(trx, sql<SqlBool>`(not ${isEnabledAdmin('users')} or exists ${others})`)
      if (done !== undefined) return done
      const exists = await trx.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()
      return exists ? LAST_ADMIN : undefined
    })
  }

  /** `lock`: on PostgreSQL, hold the row until the transaction ends, so that nobody changes it meanwhile. */
  const findById = async (executor: Kysely<Database>, id: string, { lock = false } = {}) => {
    let query = executor.selectFrom('users').select(USER_COLUMNS).where('id', '=', id)
    if (lock && locksRows) query = query.forNoKeyUpdate()
    const row = await query.executeTakeFirst()
    return row && toUser(row)
  }

  /** The user whose unique `column` holds `value`. */
  const findOneBy = async (column: 'username_key' | 'external_id', value: string) => {
    const row = await db.selectFrom('users').select(USER_COLUMNS).where(column, '=', value).executeTakeFirst()
    return row && toUser(row)
  }

  return {
    async insert(user) {
      const row = toRow(user)
      await db.insertInto('users').values(row).execute()
      return toUser(row)
    },

    async insertMany(users) {
      if (users.length > 0) await db.insertInto('users').values(users.map(toRow)).execute()
    },

    async findTaken(usernameKeys, externalIds) {
      const [byKey, byExternalId] = await Promise.all([
        usernameKeys.length === 0
          ? []
          : db.selectFrom('users').select('username_key').where('username_key', 'in', usernameKeys).execute(),
        externalIds.length === 0
          ? []
          : db.selectFrom('users').select('external_id').where('external_id', 'in', externalIds).execute(),
      ])
      return {
        usernameKeys: new Set(byKey.map((row) => row.username_key)),
        externalIds: new Set(byExternalId.map((row) => row.external_id ?? '')),
      }
    },

    findByExternalId: (externalId) => findOneBy('external_id', externalId),

    findById: (id) => findById(db, id),

    findByUsernameKey: (usernameKey) => findOneBy('username_key', usernameKey),

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
      // Read before the write, in its transaction (after the admin locks, when guarded), and locked.
      const write = async (trx: Kysely<Database>, keepsAnAdmin?: KeepsAnAdmin) => {
        const before = await findById(trx, id, { lock: true })
        if (!before) return undefined
        let query = trx.updateTable('users').set(values).where('id', '=', id)
        if (keepsAnAdmin) query = query.where(keepsAnAdmin)
        const result = await query.executeTakeFirst()
        const after = result.numUpdatedRows > 0n ? await findById(trx, id) : undefined
        return after && { before, after }
      }
      if (!canRemoveAdmin(changes)) return inTransaction(db, (trx) => write(trx))
      return guarded(id, write)
    },

    async setPasswordHash(id, passwordHash, now) {
      await db
        .updateTable('users')
        .set({ password_hash: passwordHash, updated_at: now })
        .where('id', '=', id)
        .execute()
    },

    async changePassword(id, passwordHash, now, ifTokenVersion) {
      let query = db
        .updateTable('users')
        .set((eb) => ({
          password_hash: passwordHash,
          token_version: eb('token_version', '+', 1),
          updated_at: now,
        }))
        .where('id', '=', id)
      if (ifTokenVersion !== undefined) query = query.where('token_version', '=', ifTokenVersion)
      const result = await query.executeTakeFirst()
      return result.numUpdatedRows > 0n ? this.findById(id) : undefined
    },

    async delete(id) {
      return guarded(id, async (trx, keepsAnAdmin) => {
        const row = await trx
          .deleteFrom('users')
          .where('id', '=', id)
          .where(keepsAnAdmin)
          .returning(USER_COLUMNS)
          .executeTakeFirst()
        return row && toUser(row)
      })
    },
  }
}
