// Imports users from another system (issue 18) with the password hashes it stored: bcrypt (Flask-Bcrypt) and
// argon2 hashes are kept as they are, verified at login and upgraded to argon2id then (password-hasher.ts). The
// old id becomes the external id, which makes a second run import nothing twice. Rows arrive as a stream and
// are written in batches, each in one transaction; what the source repeats is found through `seen` (a scratch
// store the caller gives, so that memory does not grow with the source). Reserved usernames are the operator's to
// use, as with `tessera user create`; every other rule of a new username applies (the username policy).
import { normalizeUsername, type UsernamePolicy, usernameKey } from '../access/username.ts'
import { isUniqueViolation } from '../db/database-errors.ts'
import type { Transact } from '../db/transact.ts'
import type { EventContext } from '../events/event.ts'
import type { EventWriter } from '../events/event-recorder.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'
import { newId } from '../lib/ids.ts'
import type { NewUser, UserRepository } from '../users/user.repository.ts'
import { NOT_IN_NAMES } from '../users/users.schemas.ts'
import { isReadableHash } from './password-hasher.ts'

/** One row of a source, as read: `line` is its line (or row number) in the source, for the report. */
export type ImportRow = {
  line: number
  externalId?: string | undefined
  username?: string | undefined
  passwordHash?: string | undefined
  firstName?: string | undefined
  lastName?: string | undefined
}

export const SKIP_REASONS = {
  missing_field: 'a required field (username, password) is empty or missing',
  invalid_username: 'the username is not valid under the username policy',
  invalid_name: 'the first or last name is not valid',
  invalid_hash:
    'the password hash is neither bcrypt ($2a$, $2b$, $2y$, cost 4 to 15) nor argon2 (at most 256 MiB, 10 passes, 16 lanes)',
  invalid_external_id: 'the id is longer than 128 characters or holds a control or invisible character',
  username_taken: 'the username is, once normalized, that of a user Tessera already has',
  duplicate_username: 'the username is, once normalized, that of an earlier row of the source',
  duplicate_external_id: 'an earlier row of the source has the same id',
} as const

export type SkipReason = keyof typeof SKIP_REASONS

export type Skipped = {
  line: number
  externalId: string | null
  username: string | null
  reason: SkipReason
  detail: string
}

/**
 * What the source repeats: the first line of this run that had a key (a username key or an external id), kept
 * by the caller so that memory does not grow with the source (a scratch SQLite file).
 */
export interface SeenInSource {
  /** The line that first had `key` of `kind`, or undefined; records `line` for it when it had none. */
  claim(kind: 'username' | 'externalId', key: string, line: number): number | undefined
}

export type ImportReport = {
  dryRun: boolean
  /** Rows read from the source. */
  read: number
  /** Users added (with --dry-run: that would be added). */
  imported: number
  /** Rows whose external id a user already has: imported by an earlier run, left as they are. */
  alreadyImported: number
  skipped: number
  skippedByReason: Partial<Record<SkipReason, number>>
  /** The first MAX_SKIPS_LISTED skipped rows, in source order (counts above are complete). */
  skips: Skipped[]
}

export const MAX_SKIPS_LISTED = 1000
export const IMPORT_BATCH_SIZE = 500

export type ImportStore = { users: UserRepository; events: EventWriter }

export type UserImporterDeps = {
  /** Reads (a dry run writes nothing). */
  users: UserRepository
  /** Each batch, and the run's summary event, in a transaction. */
  transact: Transact<ImportStore>
  usernames: UsernamePolicy
  clock: Clock
}

export type ImportOptions = {
  dryRun: boolean
  seen: SeenInSource
  /** The kind of source, for the summary event. */
  source: string
  context: EventContext
  /** Called after each batch. */
  onProgress?: (report: ImportReport) => void
}

// As PersonName says: 1 to 100 characters, no control, format or other invisible ones.
const PERSON_NAME = new RegExp(`^[^${NOT_IN_NAMES}]{1,100}$`, 'u')

type Candidate = { row: ImportRow; user: NewUser }

export function createUserImporter(deps: UserImporterDeps) {
  const { users, transact, usernames, clock } = deps

  /** The user a row makes, or why it is skipped (before any lookup). */
  function candidateOf(row: ImportRow, now: number): Candidate | Omit<Skipped, 'line' | 'externalId'> {
    const externalId = row.externalId?.trim() || null
    const rawName = row.username?.trim() ?? ''
    const username = normalizeUsername(rawName)
    const skip = (reason: SkipReason, detail: string = SKIP_REASONS[reason]) => ({
      username: rawName === '' ? null : username,
      reason,
      detail,
    })
    const hash = row.passwordHash?.trim() ?? ''
    if (rawName === '' || hash === '') return skip('missing_field')
    // As GET /users?externalId= takes it, and as the column holds it.
    if (externalId !== null && ([...externalId].length > 128 || /[\p{C}\p{Zl}\p{Zp}]/u.test(externalId))) {
      return skip('invalid_external_id')
    }
    const problem = usernames.problem(username)
    if (problem) return skip('invalid_username', `the username ${problem}`)
    if (!isReadableHash(hash)) return skip('invalid_hash')
    // A missing name is the username, as `tessera user create` does.
    const firstName = row.firstName?.trim() || username.slice(0, 100)
    const lastName = row.lastName?.trim() || username.slice(0, 100)
    if (!PERSON_NAME.test(firstName) || !PERSON_NAME.test(lastName)) return skip('invalid_name')
    return {
      row,
      user: {
        id: newId(),
        username,
        usernameKey: usernameKey(username),
        firstName,
        lastName,
        passwordHash: hash,
        roles: ['user'],
        createdAt: now,
        updatedAt: now,
        externalId,
      },
    }
  }

  return {
    async run(rows: AsyncIterable<ImportRow>, options: ImportOptions): Promise<ImportReport> {
      const report: ImportReport = {
        dryRun: options.dryRun,
        read: 0,
        imported: 0,
        alreadyImported: 0,
        skipped: 0,
        skippedByReason: {},
        skips: [],
      }
      const skipRow = (skip: Skipped) => {
        report.skipped++
        report.skippedByReason[skip.reason] = (report.skippedByReason[skip.reason] ?? 0) + 1
        if (report.skips.length < MAX_SKIPS_LISTED) report.skips.push(skip)
      }

      /** Checks a batch against the users Tessera has, and writes what is new; undefined: retry the batch. */
      const writeBatch = async (batch: Candidate[], reader: UserRepository, write: boolean) => {
        const taken = await reader.findTaken(
          batch.map((c) => c.user.usernameKey),
          batch.flatMap((c) => (c.user.externalId ? [c.user.externalId] : [])),
        )
        const fresh: Candidate[] = []
        const outcomes: (Skipped | 'already' | Candidate)[] = []
        for (const candidate of batch) {
          const { user, row } = candidate
          if (user.externalId && taken.externalIds.has(user.externalId)) outcomes.push('already')
          else if (taken.usernameKeys.has(user.usernameKey)) {
            outcomes.push({
              line: row.line,
              externalId: user.externalId ?? null,
              username: user.username,
              reason: 'username_taken',
              detail: SKIP_REASONS.username_taken,
            })
          } else {
            fresh.push(candidate)
            outcomes.push(candidate)
          }
        }
        if (write) await reader.insertMany(fresh.map((c) => c.user))
        return outcomes
      }

      const flush = async (batch: Candidate[]) => {
        if (batch.length === 0) return
        let outcomes: Awaited<ReturnType<typeof writeBatch>> | undefined
        // A user registered between the check and the insert makes the insert fail: checked again, then.
        for (let attempt = 1; outcomes === undefined; attempt++) {
          try {
            outcomes = options.dryRun
              ? await writeBatch(batch, users, false)
              : await transact((store) => writeBatch(batch, store.users, true))
          } catch (error) {
            if (!isUniqueViolation(error) || attempt >= 3) throw error
          }
        }
        for (const outcome of outcomes) {
          if (outcome === 'already') report.alreadyImported++
          else if ('reason' in outcome) skipRow(outcome)
          else report.imported++
        }
      }

      let batch: Candidate[] = []
      const now = epochSeconds(clock)
      for await (const row of rows) {
        report.read++
        const made = candidateOf(row, now)
        const externalId = row.externalId?.trim() || null
        if (!('user' in made)) {
          skipRow({ line: row.line, externalId, ...made })
          continue
        }
        // Repeats within the source, found before any lookup: the first row of a name or id wins.
        const sameId =
          externalId === null ? undefined : options.seen.claim('externalId', externalId, row.line)
        // A row skipped for its id does not claim its name: a later row may have it.
        const sameName =
          sameId === undefined ? options.seen.claim('username', made.user.usernameKey, row.line) : undefined
        if (sameId !== undefined || sameName !== undefined) {
          const reason = sameId !== undefined ? 'duplicate_external_id' : 'duplicate_username'
          skipRow({
            line: row.line,
            externalId,
            username: made.user.username,
            reason,
            detail: `${SKIP_REASONS[reason]} (line ${sameId ?? sameName})`,
          })
          continue
        }
        batch.push(made)
        if (batch.length >= IMPORT_BATCH_SIZE) {
          await flush(batch)
          batch = []
          options.onProgress?.(report)
        }
      }
      await flush(batch)
      options.onProgress?.(report)
      if (!options.dryRun && report.imported > 0) {
        await transact((store) =>
          store.events.record({
            type: 'users.imported',
            context: options.context,
            detail: {
              source: options.source,
              imported: report.imported,
              alreadyImported: report.alreadyImported,
              skipped: report.skipped,
            },
          }),
        )
      }
      return report
    },
  }
}

export type UserImporter = ReturnType<typeof createUserImporter>
