// `tessera user grant-admin | revoke-admin | enable | disable | reset-link | unlock | mfa-reset <username>`: what the admin
// API does to one user, for an operator with no admin left to ask (or none yet). Each goes through the same
// service as the API, so revoking admin or disabling obeys the same rule (never leave no enabled admin), and
// disabling ends the user's sessions as the API does. Each change is recorded as a security event with the
// actor `cli`.

import { usernameKey } from '../access/username.ts'
import type { Services } from '../deps.ts'
import { CLI_CONTEXT } from '../events/event.ts'
import { isoTime } from '../lib/clock.ts'
import { ADMIN_ROLE, type User } from '../users/user.repository.ts'
import { type Command, parseCommandArgs, withDeps, writeLine } from './command.ts'

type Change = {
  name: string
  summary: string
  help: string
  /** The outcome to print: the change made, or why none was needed. */
  apply(services: Services, user: User): Promise<string>
}

function userCommand({ name, summary, help, apply }: Change): Command {
  return {
    name,
    summary,
    help: `Usage: tessera ${name} <username>\n\n${help}`,
    async run(args, io) {
      const { positionals } = parseCommandArgs(name, args, {}, ['username'])
      return withDeps(io.env, async ({ services }) => {
        const user = await services.users.getByUsername(positionals[0] ?? '')
        writeLine(io.stdout, await apply(services, user))
        return 0
      })
    },
  }
}

const rolesOf = (user: User) => `(roles: ${user.roles.join(', ')})`
const isAdmin = (user: User) => user.roles.includes(ADMIN_ROLE)

const RUNNING_SERVERS = `Running servers see the change within AUTH_STATE_CACHE_TTL_MS (at once with REDIS_URL).`

export const userGrantAdminCommand = userCommand({
  name: 'user grant-admin',
  summary: 'Give a user the admin role',
  help: `Adds the admin role to the user's roles. The user's next request has it: no new login is needed.
${RUNNING_SERVERS}
`,
  async apply({ users }, user) {
    if (isAdmin(user)) return `"${user.username}" is already an admin ${rolesOf(user)}`
    const updated = await users.adminUpdate(user.id, { roles: [...user.roles, ADMIN_ROLE] }, CLI_CONTEXT)
    const note = updated.disabled ? `; the user is disabled: \`tessera user enable ${user.username}\`` : ''
    return `"${updated.username}" is now an admin ${rolesOf(updated)}${note}`
  },
})

export const userRevokeAdminCommand = userCommand({
  name: 'user revoke-admin',
  summary: 'Take the admin role from a user (never the last enabled admin)',
  help: `Removes the admin role from the user's roles. Refused (exit 1) when the user is the last enabled admin:
grant the role to someone else first. ${RUNNING_SERVERS}
`,
  async apply({ users }, user) {
    if (!isAdmin(user)) return `"${user.username}" is not an admin ${rolesOf(user)}`
    const updated = await users.adminUpdate(
      user.id,
      { roles: user.roles.filter((role) => role !== ADMIN_ROLE) },
      CLI_CONTEXT,
    )
    return `"${updated.username}" is no longer an admin ${rolesOf(updated)}`
  },
})

export const userEnableCommand = userCommand({
  name: 'user enable',
  summary: 'Let a disabled user log in again',
  help: `Enables a disabled user: they can log in again (their old sessions stay ended).
`,
  async apply({ users }, user) {
    if (!user.disabled) return `"${user.username}" is already enabled`
    await users.adminUpdate(user.id, { disabled: false }, CLI_CONTEXT)
    return `Enabled "${user.username}"; they can log in again.`
  },
})

export const userDisableCommand = userCommand({
  name: 'user disable',
  summary: "Stop a user logging in, and end their sessions (never the last enabled admin's)",
  help: `Disables the user and ends every session they have: their refresh tokens stop working at once, and so do
their access tokens (on running servers, within AUTH_STATE_CACHE_TTL_MS; at once with REDIS_URL). Refused
(exit 1) when the user is the last enabled admin: grant the role to someone else first.
`,
  async apply({ users }, user) {
    if (user.disabled) return `"${user.username}" is already disabled`
    await users.adminUpdate(user.id, { disabled: true }, CLI_CONTEXT)
    return `Disabled "${user.username}"; their sessions have ended.`
  },
})

export const userResetLinkCommand = userCommand({
  name: 'user reset-link',
  summary: 'Print a single-use password-reset link for a user, to hand over yourself',
  help: `Issues a password-reset token for the user and prints its link (PUBLIC_URL + PASSWORD_RESET_PATH +
#token=...) and the token. It is valid for PASSWORD_RESET_TTL_SECONDS, once; the user's earlier token stops
working. POST /auth/password-reset {token, newPassword} sets the password and ends every session. Give it to
the user only: whoever holds it can set their password.
`,
  async apply({ passwordResets }, user) {
    const link = await passwordResets.issue(user.id, 'cli', CLI_CONTEXT)
    const minutes = Math.round(link.expires_in / 60)
    return `Reset link for "${user.username}", valid for ${minutes} minutes, once:\n${link.url}\ntoken: ${link.token}`
  },
})

export const userUnlockCommand = userCommand({
  name: 'user unlock',
  summary: "Forget a user's failed logins, so that their logins are no longer slowed down",
  help: `Shows the user's counters of failed logins (README, Lockout), then forgets them all: logins of the account
are no longer slowed down, from any client. Recorded as login.unlocked.
`,
  async apply({ lockout }, user) {
    const counters = await lockout.state(usernameKey(user.username))
    if (counters.length === 0) return `"${user.username}" has no failed logins counted`
    const lines = counters.map((counter) => {
      const whose = counter.device === '' ? 'clients without a device token' : `device ${counter.device}`
      const until = counter.slowed ? `, slowed down until ${isoTime(counter.lockedUntil)}` : ''
      return `  ${whose}: ${counter.failures} failed logins${until}`
    })
    await lockout.unlock(user, CLI_CONTEXT)
    return [`Forgot the failed logins of "${user.username}":`, ...lines].join('\n')
  },
})

export const userMfaResetCommand = userCommand({
  name: 'user mfa-reset',
  summary: "Remove a user's second factor and recovery codes (a user who lost their device)",
  help: `Removes the user's TOTP factor and recovery codes: their logins ask for the password only, until they
enrol again (POST /auth/mfa/totp). Their sessions go on. Recorded as mfa.disabled. ${RUNNING_SERVERS}
`,
  async apply({ mfa }, user) {
    if (!(await mfa.isEnabled(user.id))) return `"${user.username}" has no second factor`
    await mfa.remove(user.id, CLI_CONTEXT)
    return `Removed the second factor of "${user.username}": their logins ask for the password only.`
  },
})
