// `tessera webhooks list | retry`: the webhook outbox for an operator: what is pending or dead, and making a
// delivery due now. Running servers pick a revived delivery up within WEBHOOK_POLL_INTERVAL_MS.
import { epochSeconds, isoTime, systemClock } from '../lib/clock.ts'
import { DELIVERY_STATUSES, type DeliveryStatus } from '../webhooks/webhook-delivery.repository.ts'
import { CliError, type Command, parseCommandArgs, UsageError, withDeps, writeLine } from './command.ts'

export const webhooksListCommand: Command = {
  name: 'webhooks list',
  summary: 'List webhook deliveries, newest first',
  help: `Usage: tessera webhooks list [--status pending|delivered|dead] [--limit N]

Lists webhook deliveries, newest first (at most --limit, default 20): id (the webhook-id header), status,
attempts, event type, when enqueued, and the next attempt or the last error.
`,
  async run(args, io) {
    const { values } = parseCommandArgs(this.name, args, {
      status: { type: 'string' },
      limit: { type: 'string', default: '20' },
    })
    const status = values.status as DeliveryStatus | undefined
    if (status !== undefined && !DELIVERY_STATUSES.includes(status)) {
      throw new UsageError(`--status must be one of ${DELIVERY_STATUSES.join(', ')}`, this.name)
    }
    const limit = Number(values.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new UsageError('--limit must be a whole number from 1 to 1000', this.name)
    }
    return withDeps(io.env, async ({ webhooks }) => {
      const deliveries = await webhooks.deliveries.list({ status, limit })
      for (const d of deliveries) {
        const next = d.status === 'pending' ? `next ${isoTime(d.nextAttemptAt)}` : ''
        const detail = [next, d.lastError ? `last error: ${d.lastError}` : ''].filter(Boolean).join('; ')
        writeLine(
          io.stdout,
          [d.id, d.status.padEnd(9), `${d.attempts}`.padStart(3), d.type, isoTime(d.createdAt), detail]
            .join('  ')
            .trimEnd(),
        )
      }
      if (deliveries.length === 0) writeLine(io.stdout, '(no deliveries)')
      return 0
    })
  },
}

export const webhooksRetryCommand: Command = {
  name: 'webhooks retry',
  summary: 'Make a dead or pending webhook delivery due now',
  help: `Usage: tessera webhooks retry <id>
       tessera webhooks retry --all-dead

Makes the delivery <id> (its webhook-id, as \`tessera webhooks list\` and GET /admin/webhooks/deliveries
show it) due now: a pending one is attempted at once instead of at its next retry, a dead one becomes
pending again with a fresh round of WEBHOOK_MAX_ATTEMPTS attempts. --all-dead revives every dead delivery,
after a receiver was down for longer than the retries last. A running server sends it within
WEBHOOK_POLL_INTERVAL_MS. A delivery that was delivered, or whose message expired, is not sent again.
`,
  async run(args, io) {
    // Either <id> or --all-dead: parsed as the one or the other, so that each is checked as strictly.
    const allDead = args.includes('--all-dead')
    const { positionals } = allDead
      ? parseCommandArgs(this.name, args, { 'all-dead': { type: 'boolean' } })
      : parseCommandArgs(this.name, args, {}, ['id'])
    const id = positionals[0]
    return withDeps(io.env, async ({ webhooks }) => {
      const now = epochSeconds(systemClock)
      if (id === undefined) {
        const revived = await webhooks.deliveries.retryAllDead(now)
        writeLine(io.stdout, `Revived ${revived} dead deliver${revived === 1 ? 'y' : 'ies'}.`)
        return 0
      }
      const outcome = await webhooks.deliveries.retry(id, now)
      switch (outcome) {
        case 'revived':
          writeLine(io.stdout, `Delivery ${id} is pending again, due now.`)
          return 0
        case 'due_now':
          writeLine(io.stdout, `Delivery ${id} is due now.`)
          return 0
        case 'delivered':
          throw new CliError(`Delivery ${id} was already delivered`)
        case 'expired':
          throw new CliError(`Delivery ${id} expired: its message is no longer valid, and was erased`)
        case 'not_found':
          throw new CliError(`No webhook delivery ${id}`)
      }
    })
  },
}
