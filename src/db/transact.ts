// Units of work: repositories bound to one transaction, so that a change and the events recording it commit
// or roll back together (decision 0012). Kysely's Transaction is a Kysely, so a repository made over one
// works unchanged.
import type { Db } from './database.ts'

/** Runs `work` in one transaction, over a store of repositories bound to it; resolves once committed. */
export type Transact<S> = <T>(work: (store: S) => Promise<T>) => Promise<T>

export function createTransact<S>(db: Db, bind: (executor: Db) => S): Transact<S> {
  return (work) => db.transaction().execute((trx) => work(bind(trx)))
}

/**
 * Runs `work` in the transaction `db` already is, or in a new one: for a repository method that needs its
 * statements to be one step whether or not its caller opened a transaction (Kysely cannot nest them).
 */
export function inTransaction<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db) : db.transaction().execute(work)
}
