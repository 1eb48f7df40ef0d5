// The closed list of security event types (issue 13), declared once: what each records, and the shape of its
// detail. TypeScript checks every recorded event against it, the API's detail schema is built from it, and the
// README's event table is generated from it (event-docs.ts, checked by a test).
import { type Static, type TObject, type TSchema, Type } from 'typebox'

const SessionsRevoked = Type.Integer({ minimum: 0, description: 'how many active sessions it ended' })

/** Why a login was refused: the one detail an operator most often filters on. */
export const LOGIN_FAILURE_REASONS = [
  'unknown_user',
  'wrong_password',
  'disabled',
  'rate_limited',
  'slowed_down',
  'wrong_code',
] as const

const Amr = Type.Array(Type.String(), {
  description: 'how the user authenticated (RFC 8176): `pwd`, and `otp` with a second factor',
})
const RecoveryCodes = Type.Integer({ minimum: 1, description: 'how many recovery codes were issued' })

export const EVENT_TYPES = {
  'user.registered': {
    when: 'An account was created: `POST /auth/register` (actor `anonymous`) or `tessera user create` (`cli`).',
    detail: Type.Object({
      username: Type.String({ description: 'the username, as stored' }),
      roles: Type.Array(Type.String(), { description: 'the roles it was created with' }),
    }),
  },
  'login.succeeded': {
    when:
      "A login started a session (with a password, and the second factor for a user who has one): the event's " +
      "session, address and user agent are the new session's.",
    detail: Type.Object({ amr: Type.Optional(Amr) }),
  },
  'login.mfa_required': {
    when:
      'The password of a user with a second factor was right: the login waits for a code (`POST /auth/login/mfa`). ' +
      'One the user did not start means their password is known.',
    detail: Type.Object({}),
  },
  'login.failed': {
    when:
      'A login was refused. Its subject is the account when one has that name; for an unknown name, `usernameHash` ' +
      'stands for it (people type passwords into the username field: the name itself is never kept). ' +
      '`rate_limited` (a 429) is recorded at most once per account, and once per address, per rate-limit window ' +
      'and instance. `slowed_down`: refused unchecked while the account (or the device) was slowed down after ' +
      'failed logins (README, Lockout). `wrong_code`: the second step of a login got a wrong code or recovery code.',
    detail: Type.Object({
      reason: Type.Enum([...LOGIN_FAILURE_REASONS], { type: 'string', description: 'why it was refused' }),
      usernameHash: Type.Optional(
        Type.String({
          description:
            'for a name no account has: an HMAC-SHA-256 of the name (case-folded) under a server secret, so that ' +
            'attempts at one name can be grouped without the name being kept',
        }),
      ),
    }),
  },
  'session.revoked': {
    when: 'One session was ended: `POST /auth/logout`, or `DELETE /auth/sessions/{id}` (sign out another device).',
    detail: Type.Object({
      reason: Type.Enum(['logout', 'revoked_by_user'], { type: 'string', description: 'how it was ended' }),
    }),
  },
  'session.reauthenticated': {
    when: 'The user proved who they are again in a session (`POST /auth/reauthenticate`): its tokens carry the new `auth_time`.',
    detail: Type.Object({ amr: Amr }),
  },
  'session.reuse_detected': {
    when:
      'A spent refresh token was presented again, outside the reuse window: the session is revoked. Actor ' +
      '`anonymous` (whoever presented it), with their address and user agent.',
    detail: Type.Object({}),
  },
  'sessions.revoked_all': {
    when: 'The user signed out everywhere: `POST /auth/logout-all`.',
    detail: Type.Object({ sessionsRevoked: SessionsRevoked }),
  },
  'login.locked': {
    when:
      'Failed logins began to slow the account down (LOCKOUT_FREE_FAILURES reached): for clients without its ' +
      'device token (`device: others`), or for one device of its own (`own`). Recorded when the slowdown starts, ' +
      'not at each doubling.',
    detail: Type.Object({
      device: Type.Enum(['others', 'own'], { type: 'string', description: 'whose logins are slowed down' }),
      failures: Type.Integer({ minimum: 1, description: 'failed logins counted' }),
      seconds: Type.Integer({ minimum: 0, description: 'the first wait' }),
    }),
  },
  'login.unlocked': {
    when:
      "The account's failed logins were cleared: by an admin (`DELETE /users/{id}/lockout`), `tessera user unlock` " +
      '(`cli`), or a password reset (`anonymous`: whoever held the token).',
    detail: Type.Object({
      throttles: Type.Integer({ minimum: 0, description: 'how many counters (devices) were cleared' }),
    }),
  },
  'mfa.enrollment_started': {
    when: 'The user started enrolling a TOTP factor (`POST /auth/mfa/totp`); it is pending until a code confirms it.',
    detail: Type.Object({}),
  },
  'mfa.enabled': {
    when: 'A code confirmed the enrolment (`POST /auth/mfa/totp/confirm`): logins now ask for a second factor.',
    detail: Type.Object({ recoveryCodes: RecoveryCodes }),
  },
  'mfa.recovery_codes_regenerated': {
    when: 'The user made new recovery codes (`POST /auth/mfa/recovery-codes`); the old ones stopped working.',
    detail: Type.Object({ recoveryCodes: RecoveryCodes }),
  },
  'mfa.recovery_code_used': {
    when: 'A recovery code was spent (a login, a reauthentication, or removing the factor).',
    detail: Type.Object({
      remaining: Type.Integer({ minimum: 0, description: 'unused recovery codes left' }),
    }),
  },
  'mfa.disabled': {
    when:
      'The second factor was removed: by the user (`DELETE /auth/mfa/totp`), an admin (`DELETE /users/{id}/mfa`) ' +
      'or `tessera user mfa-reset` (`cli`).',
    detail: Type.Object({}),
  },
  'password.reset_link_issued': {
    when:
      'A password-reset token was issued: by an admin (`POST /users/{id}/password-reset`), `tessera user ' +
      'reset-link` (`cli`), or a self-service request (`anonymous`, then sent to PASSWORD_RESET_WEBHOOK_URL). ' +
      'Any earlier token of the user stops working.',
    detail: Type.Object({
      via: Type.Enum(['admin', 'cli', 'self_service'], { type: 'string', description: 'who asked for it' }),
      expiresIn: Type.Integer({ minimum: 1, description: 'seconds it is valid for' }),
    }),
  },
  'password.reset': {
    when:
      'A password was set with a reset token (`POST /auth/password-reset`); every session of the user ended. ' +
      'Actor `anonymous`: whoever held the token.',
    detail: Type.Object({ sessionsRevoked: SessionsRevoked }),
  },
  'password.changed': {
    when: 'The user changed their password (`POST /users/me/password`); every session of theirs ended.',
    detail: Type.Object({ sessionsRevoked: SessionsRevoked }),
  },
  'user.updated': {
    when: 'The user changed their profile (`PATCH /users/me`): only fields whose value changed are named.',
    detail: Type.Object({
      fields: Type.Array(Type.Enum(['firstName', 'lastName'], { type: 'string' }), {
        description: 'the fields changed',
      }),
    }),
  },
  'user.disabled': {
    when: 'An admin (`PATCH /users/{id}`) or `tessera user disable` disabled the user; every session ended.',
    detail: Type.Object({ sessionsRevoked: SessionsRevoked }),
  },
  'user.enabled': {
    when: 'An admin or `tessera user enable` enabled a disabled user.',
    detail: Type.Object({}),
  },
  'user.deleted': {
    when: 'An admin deleted the user (`DELETE /users/{id}`); their sessions went with them.',
    detail: Type.Object({ username: Type.String({ description: 'the username the account had' }) }),
  },
  'users.imported': {
    when:
      '`tessera user import` added users from another system (issue 18): one event per run that imported any, ' +
      'not one per user, so that a million imported users do not bury the log or flood the webhooks.',
    detail: Type.Object({
      source: Type.String({ description: 'the kind of source: `sqlite`, `csv` or `jsonl`' }),
      imported: Type.Integer({ minimum: 1, description: 'how many users it added' }),
      alreadyImported: Type.Integer({ minimum: 0, description: 'rows whose external id a user already had' }),
      skipped: Type.Integer({ minimum: 0, description: 'rows refused, each with its reason in the report' }),
    }),
  },
  'role.granted': {
    when: 'An admin or `tessera user grant-admin` gave the user a role: one event per role.',
    detail: Type.Object({ role: Type.String({ description: 'the role' }) }),
  },
  'role.revoked': {
    when: 'An admin or `tessera user revoke-admin` took a role from the user: one event per role.',
    detail: Type.Object({ role: Type.String({ description: 'the role' }) }),
  },
  'key.rotated': {
    when:
      'A new signing key became the active one: `tessera keys rotate` (actor `cli`), or a server making or ' +
      'importing its key at start (`system`).',
    detail: Type.Object({
      kid: Type.String({ description: 'the key id' }),
      algorithm: Type.String({ description: 'its algorithm' }),
    }),
  },
  'key.pruned': {
    when: 'A retired signing key that no unexpired token can need was deleted: `tessera keys prune`, one event per key.',
    detail: Type.Object({ kid: Type.String({ description: 'the key id' }) }),
  },
} as const satisfies Record<string, { when: string; detail: TObject }>

export type EventType = keyof typeof EVENT_TYPES

export const EVENT_TYPE_NAMES = Object.keys(EVENT_TYPES) as EventType[]

/** The detail object of an event of type T, as TypeScript checks it where the event is recorded. */
export type EventDetail<T extends EventType> = Static<(typeof EVENT_TYPES)[T]['detail']>

/**
 * Every detail property of every type, each optional: the API's allow-list of what a detail may hold. A
 * property that several types declare as enums of strings (`reason`) takes all their values.
 */
function mergedDetailProperties(): Record<string, TSchema> {
  const merged: Record<string, Record<string, unknown>> = {}
  for (const { detail } of Object.values(EVENT_TYPES) as { detail: TObject }[]) {
    for (const [name, schema] of Object.entries(
      detail.properties as Record<string, Record<string, unknown>>,
    )) {
      const known = merged[name]
      if (!known) {
        merged[name] = { ...schema }
      } else if (Array.isArray(known.enum) && Array.isArray(schema.enum)) {
        known.enum = [...new Set([...known.enum, ...schema.enum])]
        delete known.description
      } else if (JSON.stringify(known) !== JSON.stringify(schema)) {
        const { description: _a, ...a } = known
        const { description: _b, ...b } = schema
        if (JSON.stringify(a) !== JSON.stringify(b)) {
          throw new Error(`Event detail property "${name}" is declared with two different types`)
        }
      }
    }
  }
  return Object.fromEntries(
    Object.entries(merged).map(([name, schema]) => [name, Type.Optional(Type.Unsafe(schema as TSchema))]),
  )
}

export const EventDetailSchema = Type.Object(mergedDetailProperties(), {
  additionalProperties: false,
  description: "Depends on the event's type: see the README's event table",
})
