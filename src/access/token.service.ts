// Issues and verifies access tokens (RFC 9068 JWTs) with fast-jwt. Verification pins the algorithm to the
// key's own, requires exp, checks iss, aud and typ, and takes nothing but a lookup key (kid) from the token.
// Time claims are checked here against the injected clock, because fast-jwt fixes its clock per verifier.
import { createSigner, createVerifier } from 'fast-jwt'
import type { Config } from '../config/load-config.ts'
import { AppError } from '../http/problem.ts'
import type { KeyStore, SigningKey } from '../keys/key-store.ts'
import { type Clock, epochSeconds } from '../lib/clock.ts'

export const ACCESS_TOKEN_TYPE = 'at+jwt'

export type AccessTokenClaims = {
  iss: string
  aud: string
  sub: string
  iat: number
  exp: number
  jti: string
  username: string
  roles: string[]
  /** The user's token version when issued; a password change bumps it and refuses older tokens. */
  ver: number
  /** The session the token belongs to: revoking the session refuses its access tokens too. */
  sid: string
  /**
   * How the user authenticated (RFC 8176: `pwd`, `otp`), when (epoch seconds), and the class that makes (`pwd`,
   * or `mfa` with a second factor; RFC 9470 challenges name it in `acr_values`). Absent from tokens issued
   * before issue 15, which are read as a password sign-in at an unknown time.
   */
  amr?: string[]
  auth_time?: number
  acr?: string
}

/** The `acr` of a token whose `amr` includes a second factor, as step-up challenges ask for it. */
export const ACR_MFA = 'mfa'
export const ACR_PASSWORD = 'pwd'

/** How a session's user authenticated: what its tokens say in `amr` and `auth_time`. */
export type TokenAuthentication = { amr: string[]; authTime: number }

/** Whether the token's user proved a second factor. */
export const hasSecondFactor = (claims: AccessTokenClaims) => claims.acr === ACR_MFA

export type TokenSubject = { id: string; username: string; roles: string[]; tokenVersion: number }

export interface TokenService {
  issueAccessToken(
    subject: TokenSubject,
    sessionId: string,
    authentication: TokenAuthentication,
  ): { token: string; expiresIn: number }
  /**
   * The token's claims, or an AppError: `token_expired`, or `invalid_token` for everything else. A token
   * verified before answers at once, without a promise: the hot path of every authenticated request.
   */
  verifyAccessToken(token: string): AccessTokenClaims | Promise<AccessTokenClaims>
}

type Verify = (token: string) => unknown
type Sign = (payload: Record<string, unknown>) => string

// Header parameters by which a token could point at a key of its own choosing. Ours never carry them.
const KEY_BEARING_HEADERS = ['jku', 'jwk', 'x5u', 'x5c']
const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
// Tokens already verified, by their exact text: a repeat skips decoding and the signature check, but not the
// time checks nor the check that its key is still accepted. (fast-jwt's own cache keys on a SHA-256 of the
// token, which costs about as much as the HMAC it saves.) The map's key is the signature, the token's last
// segment, and an entry counts only when its whole token matches: every request brings a fresh string, which
// V8 must hash to look it up, and an HS256 signature (43 characters) is a tenth of the token to hash.
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000

export function invalidTokenError(detail: string): AppError {
  return new AppError('invalid_token', detail, {
    headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${detail}"` },
  })
}

function readHeader(token: string): Record<string, unknown> {
  const dot = token.indexOf('.')
  if (dot <= 0 || token.indexOf('.', dot + 1) < 0) throw invalidTokenError('The token is malformed')
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'))
    if (header && typeof header === 'object' && !Array.isArray(header))
      return header as Record<string, unknown>
  } catch {}
  throw invalidTokenError('The token is malformed')
}

function hasClaimTypes(payload: Record<string, unknown>): payload is AccessTokenClaims {
  return (
    typeof payload.sub === 'string' &&
    typeof payload.sid === 'string' &&
    typeof payload.jti === 'string' &&
    typeof payload.username === 'string' &&
    Number.isSafeInteger(payload.iat) &&
    Number.isSafeInteger(payload.exp) &&
    Number.isSafeInteger(payload.ver) &&
    Array.isArray(payload.roles) &&
    payload.roles.every((role) => typeof role === 'string') &&
    (payload.amr === undefined ||
      (Array.isArray(payload.amr) && payload.amr.every((method) => typeof method === 'string'))) &&
    (payload.auth_time === undefined || Number.isSafeInteger(payload.auth_time)) &&
    (payload.acr === undefined || typeof payload.acr === 'string')
  )
}

/**
 * `mfaRequiredRoles` (MFA_REQUIRED_ROLES): roles a token states only when its sign-in had a second factor, so that
 * another service reading `roles` from a verified token never grants one the auth hook would withhold.
 */
export function createTokenService(
  keyStore: KeyStore,
  clock: Clock,
  config: Config['jwt'],
  mfaRequiredRoles: readonly string[] = [],
): TokenService {
  const gatedRoles = new Set(mfaRequiredRoles)
  const verified = new Map<string, { token: string; kid: string; payload: AccessTokenClaims }>()
  const signers = new Map<string, Sign>()
  const verifiers = new Map<string, Verify>()

  const signerFor = (key: SigningKey): Sign => {
    let sign = signers.get(key.kid)
    if (!sign) {
      sign = createSigner({
        key: key.signing,
        algorithm: key.algorithm,
        kid: key.kid,
        header: { alg: key.algorithm, typ: ACCESS_TOKEN_TYPE },
      }) as Sign
      signers.set(key.kid, sign)
    }
    return sign
  }

  const verifierFor = (key: SigningKey): Verify => {
    let verify = verifiers.get(key.kid)
    if (!verify) {
      verify = createVerifier({
        key: key.verifying,
        algorithms: [key.algorithm],
        allowedIss: config.issuer,
        allowedAud: config.audience,
        checkTyp: ACCESS_TOKEN_TYPE,
        requiredClaims: ['iss', 'aud', 'sub', 'iat', 'exp', 'jti'],
        ignoreExpiration: true,
        ignoreNotBefore: true,
        cache: false,
      }) as Verify
      verifiers.set(key.kid, verify)
    }
    return verify
  }

  return {
    issueAccessToken(subject, sessionId, { amr, authTime }) {
      const key = keyStore.signingKey()
      const iat = epochSeconds(clock)
      const claims: AccessTokenClaims = {
        iss: config.issuer,
        aud: config.audience,
        sub: subject.id,
        iat,
        exp: iat + config.accessTokenTtlSeconds,
        jti: crypto.randomUUID(),
        username: subject.username,
        roles:
          gatedRoles.size === 0 || amr.includes('otp')
            ? subject.roles
            : subject.roles.filter((role) => !gatedRoles.has(role)),
        ver: subject.tokenVersion,
        sid: sessionId,
        amr,
        auth_time: authTime,
        acr: amr.includes('otp') ? ACR_MFA : ACR_PASSWORD,
      }
      return { token: signerFor(key)(claims), expiresIn: config.accessTokenTtlSeconds }
    },

    verifyAccessToken(token) {
      if (token.length > config.maxTokenBytes) throw invalidTokenError('The token is too large')
      const signature = token.slice(token.lastIndexOf('.') + 1)
      const entry = verified.get(signature)
      if (entry?.token === token && keyStore.verificationKey(entry.kid) !== undefined) {
        return checkTimes(entry.payload)
      }
      return verifySignature(token, signature).then((fresh) => {
        verified.delete(signature)
        if (verified.size >= VERIFIED_TOKEN_CACHE_SIZE) {
          const oldest = verified.keys().next().value
          if (oldest !== undefined) verified.delete(oldest)
        }
        verified.set(signature, { token, ...fresh })
        return checkTimes(fresh.payload)
      })
    },
  }

  function checkTimes(payload: AccessTokenClaims): AccessTokenClaims {
    const now = epochSeconds(clock)
    const leeway = config.clockLeewaySeconds
    if (now >= payload.exp + leeway) {
      throw new AppError('token_expired', 'The access token has expired', {
        headers: {
          'www-authenticate': 'Bearer error="invalid_token", error_description="The token has expired"',
        },
      })
    }
    if (payload.iat > now + leeway) throw invalidTokenError('The token was issued in the future')
    const nbf = (payload as { nbf?: unknown }).nbf
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + leeway)) {
      throw invalidTokenError('The token is not valid yet')
    }
    return payload
  }

  async function verifySignature(
    token: string,
    signature: string,
  ): Promise<{ kid: string; payload: AccessTokenClaims }> {
    const header = readHeader(token)
    if (KEY_BEARING_HEADERS.some((name) => name in header))
      throw invalidTokenError('The token names its own key')
    const kid = header.kid
    if (typeof kid !== 'string' || !KID_PATTERN.test(kid))
      throw invalidTokenError('The token has no valid key id')
    // An unknown kid may be a key rotated in by another instance: reload (rate-limited) and look again.
    const key =
      keyStore.verificationKey(kid) ??
      ((await keyStore.refresh()) ? keyStore.verificationKey(kid) : undefined)
    if (!key) throw invalidTokenError('The token was signed by an unknown key')
    // One spelling per signature: base64url leaves the low bits of the last character unused and decoders
    // ignore them, so without this one signed token could be sent as several different strings. (ES256 stays
    // malleable as ECDSA is, (r, n - s); nothing here keys on a token's text, the verified cache compares it.)
    if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) {
      throw invalidTokenError('The token signature is not canonical base64url')
    }

    let payload: Record<string, unknown>
    try {
      payload = verifierFor(key)(token) as Record<string, unknown>
    } catch {
      throw invalidTokenError('The token signature or claims are not valid')
    }
    if (!hasClaimTypes(payload)) throw invalidTokenError('The token claims are not valid')
    return { kid, payload }
  }
}
