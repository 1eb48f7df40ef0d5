// `tessera user create`: adds a user (or the first admin, whom no endpoint can create) through the same
// register() as POST /auth/register, after checking the input against the same schemas and rules. Only the
// reserved usernames (RESERVED_USERNAMES) are the operator's to use: the CLI may create them.

import {
  createUsernamePolicy,
  DEFAULT_USERNAME_POLICY,
  normalizeUsername,
  usernameKey,
} from '../access/username.ts'
import { Password, usernameSchema } from '../auth/auth.schemas.ts'
import { passwordProblem, USERNAME_IN_PASSWORD_MIN_LENGTH } from '../auth/password-policy.ts'
import { loadConfig } from '../config/load-config.ts'
import { CLI_CONTEXT } from '../events/event.ts'
import { PersonName } from '../users/users.schemas.ts'
import {
  CliError,
  type Command,
  type Io,
  parseCommandArgs,
  UsageError,
  withDeps,
  writeLine,
} from './command.ts'
import { fieldProblem, ruleOf } from './field-check.ts'
import { promptHidden, readAll } from './password-input.ts'

const NAME = 'user create'

const OPTIONS = {
  'first-name': { type: 'string' },
  'last-name': { type: 'string' },
  admin: { type: 'boolean' },
  'password-stdin': { type: 'boolean' },
} as const

function refuseInvalid(problems: (string | undefined)[]): void {
  const found = problems.filter((p) => p !== undefined)
  if (found.length > 0) throw new CliError(found.join('\n  '))
}

/** The length rule, then the rules of password-policy.ts (not common, not the username). */
function refuseWeakPassword(password: string, username: string): void {
  refuseInvalid([fieldProblem('The password', Password, password)])
  const problem = passwordProblem(password, username)
  if (problem) throw new CliError(`The password ${problem}`)
}

async function readPassword(fromStdin: boolean, username: string, io: Io): Promise<string> {
  if (fromStdin) return readAll(io.stdin)
  if (!io.stdin.isTTY) {
    throw new UsageError('No terminal to ask for the password on: pipe it in and add --password-stdin', NAME)
  }
  const password = await promptHidden('Password: ', io.stdin, io.stderr)
  // Checked before asking again, so that a refused password is not typed twice for nothing.
  refuseWeakPassword(password, username)
  if ((await promptHidden('Repeat password: ', io.stdin, io.stderr)) !== password) {
    throw new CliError('The passwords do not match')
  }
  return password
}

export const userCreateCommand: Command = {
  name: NAME,
  summary: 'Create a user; --admin for an administrator',
  help: `Usage: tessera user create <username> [--first-name NAME] [--last-name NAME] [--admin] [--password-stdin]

Creates a user who can log in at once, under the same rules as POST /auth/register, except that the
reserved usernames (RESERVED_USERNAMES: admin, root, system, ...) are allowed here.

  <username>          ${DEFAULT_USERNAME_POLICY.description}
                      (or as USERNAME_PATTERN and USERNAME_MAX_LENGTH say, when set)
  --first-name NAME   defaults to the username; the user can change it later (PATCH /users/me)
  --last-name NAME    defaults to the username
  --admin             give the admin role as well as user
  --password-stdin    read the password from stdin (one trailing newline is dropped) instead of
                      asking for it twice on the terminal without echo

The password: ${ruleOf(Password)}; not a common password (one in the lists of leaked passwords), not
the username, and not containing a username of ${USERNAME_IN_PASSWORD_MIN_LENGTH} or more characters, in any case. It is never
printed or logged. The username may not mix scripts (Latin with Cyrillic, say) or number systems.

Examples:
  tessera user create ada --admin
  printf '%s' "$ADMIN_PASSWORD" | tessera user create ada --admin --password-stdin
`,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(NAME, args, OPTIONS, ['username'])
    const username = positionals[0] ?? ''
    // A name is at most 100 characters; a username may be longer (an email address under USERNAME_PATTERN).
    const firstName = values['first-name'] ?? username.slice(0, 100)
    const lastName = values['last-name'] ?? username.slice(0, 100)
    const normalized = normalizeUsername(username)
    const usernames = createUsernamePolicy(loadConfig(io.env).usernames)
    const patternProblem = fieldProblem(`The username "${username}"`, usernameSchema(usernames), username)
    // register() checks the normalized form too, but only after the password has been typed.
    const normalizedProblem = patternProblem ? undefined : usernames.problem(normalized)
    refuseInvalid([
      patternProblem,
      normalizedProblem && `The username "${username}" ${normalizedProblem}`,
      fieldProblem('--first-name', PersonName, firstName),
      fieldProblem('--last-name', PersonName, lastName),
    ])
    const roles = values.admin ? ['admin', 'user'] : ['user']

    return withDeps(io.env, async ({ services, repositories }) => {
      // Answered before the password prompt; register() still refuses a username taken in the meantime.
      if (await repositories.users.findCredentials(usernameKey(username))) {
        throw new CliError(`The username "${normalizeUsername(username)}" is taken`)
      }
      const password = await readPassword(values['password-stdin'] ?? false, normalized, io)
      refuseWeakPassword(password, normalized)
      const user = await services.auth.register(
        { username, password, firstName, lastName },
        { roles, allowReservedUsername: true, context: CLI_CONTEXT },
      )
      writeLine(io.stdout, `Created user "${user.username}" (roles: ${user.roles.join(', ')})`)
      writeLine(io.stdout, `id: ${user.id}`)
      return 0
    })
  },
}
