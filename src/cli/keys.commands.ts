// `tessera keys rotate | list | prune`: signing-key management on the shared database. Running servers
// pick changes up without a restart (see KEYS_RELOAD_INTERVAL_SECONDS). A rotation and a prune are recorded as
// security events (actor `cli`) in the transaction that makes them.
import { loadConfig } from '../config/load-config.ts'
import { createDb } from '../db/create-db.ts'
import { migrateToLatest } from '../db/migrator.ts'
import { CLI_CONTEXT } from '../events/event.ts'
import { createEventRecorder, type EventRecorder } from '../events/event-recorder.ts'
import type { KeyRepository } from '../keys/key.repository.ts'
import { createKeyRepositoryFor, retirementGraceSeconds, rotateSigningKey } from '../keys/key-store.ts'
import { type Clock, epochSeconds, isoTime, systemClock } from '../lib/clock.ts'
import { createWebhookOutbox } from '../webhooks/webhook-outbox.ts'
import { CliError, type Command, type Env, parseCommandArgs, writeLine } from './command.ts'

const clock: Clock = systemClock

async function withKeys<T>(
  env: Env,
  use: (keys: KeyRepository, config: ReturnType<typeof loadConfig>, events: EventRecorder) => Promise<T>,
) {
  const config = loadConfig(env)
  const db = createDb(config.database)
  try {
    await migrateToLatest(db)
    // A running server sends the webhooks these events enqueue (it polls for what others enqueued).
    const events = createEventRecorder({
      outbox: createWebhookOutbox(config.webhooks.endpoints, clock),
      clock,
    })
    return await use(createKeyRepositoryFor(db, config), config, events)
  } finally {
    await db.destroy()
  }
}

export const keysRotateCommand: Command = {
  name: 'keys rotate',
  summary: 'Make a new signing key active; the old one keeps verifying until its tokens expire',
  help: `Usage: tessera keys rotate

Generates a new key for JWT_ALGORITHM and makes it the one new tokens are signed with. The previous key is
retired: it is still published and still verifies the tokens it signed until they expire (access-token
lifetime plus clock leeway), after which \`tessera keys prune\` removes it. Running servers switch within
KEYS_RELOAD_INTERVAL_SECONDS, and at once when they meet a token signed with the new key.

With JWT_SECRET set, the secret is the key: change the secret instead.
`,
  async run(args, io) {
    parseCommandArgs(this.name, args, {})
    return withKeys(io.env, async (keys, config, events) => {
      if (config.jwt.secret !== undefined) {
        throw new CliError('JWT_SECRET is set, and it is the signing key: rotate by changing the secret')
      }
      const kid = await rotateSigningKey(keys, clock, config.jwt.algorithm, undefined, {
        onActivated: (trx, key) =>
          events.record(trx, { type: 'key.rotated', context: CLI_CONTEXT, detail: key }),
      })
      writeLine(io.stdout, `New active ${config.jwt.algorithm} key: ${kid}`)
      return 0
    })
  },
}

export const keysListCommand: Command = {
  name: 'keys list',
  summary: 'List signing keys and their states',
  help: `Usage: tessera keys list

Lists the signing keys in the database, newest first: kid, algorithm, state (active signs; retired only
verifies), when created, when retired, and whether a token signed with it can still be valid.
`,
  async run(args, io) {
    parseCommandArgs(this.name, args, {})
    return withKeys(io.env, async (keys, config) => {
      const all = await keys.listAll()
      const grace = retirementGraceSeconds(config)
      const now = epochSeconds(clock)
      writeLine(
        io.stdout,
        [
          'KID'.padEnd(44),
          'ALG'.padEnd(6),
          'STATE'.padEnd(8),
          'CREATED'.padEnd(25),
          'RETIRED'.padEnd(25),
          'VERIFIES',
        ].join(' '),
      )
      for (const key of all) {
        const verifies = key.retiredAt === null || key.retiredAt + grace > now
        writeLine(
          io.stdout,
          [
            key.kid.padEnd(44),
            key.algorithm.padEnd(6),
            key.state.padEnd(8),
            isoTime(key.createdAt).padEnd(25),
            (key.retiredAt === null ? '-' : isoTime(key.retiredAt)).padEnd(25),
            verifies ? 'yes' : 'no (prune it)',
          ].join(' '),
        )
      }
      if (all.length === 0) writeLine(io.stdout, '(no keys yet: the server makes one on first start)')
      return 0
    })
  },
}

export const keysPruneCommand: Command = {
  name: 'keys prune',
  summary: 'Delete retired keys that no unexpired token can need',
  help: `Usage: tessera keys prune

Deletes keys retired longer ago than the access-token lifetime plus clock leeway: every token they signed
has expired, so nothing can still need them. Active keys, and retired keys still in that grace period,
are kept.
`,
  async run(args, io) {
    parseCommandArgs(this.name, args, {})
    return withKeys(io.env, async (keys, config, events) => {
      const pruned = await keys.prune(
        epochSeconds(clock) - retirementGraceSeconds(config),
        async (trx, kids) => {
          for (const kid of kids)
            await events.record(trx, { type: 'key.pruned', context: CLI_CONTEXT, detail: { kid } })
        },
      )
      writeLine(io.stdout, pruned.length === 0 ? 'No key to prune.' : `Pruned ${pruned.join(', ')}`)
      return 0
    })
  },
}
