// What a server says at start when it accepts a secret being rotated out (JWT_SECRET_PREVIOUS,
// KEY_ENCRYPTION_SECRET_PREVIOUS): each is meant to be removed, and the log reminds the operator when.
import type { Config } from '../config/load-config.ts'
import { type KeyStoreConfig, kidForSecret, retirementGraceSeconds } from './key-store.ts'

/** One line per previous secret configured; none without. Names a kid, never a secret. */
export function previousSecretNotices(
  config: Pick<Config, 'keyEncryptionSecretPrevious'> & KeyStoreConfig,
): string[] {
  const notices: string[] = []
  if (config.jwt.previousSecret !== undefined) {
    notices.push(
      `JWT_SECRET_PREVIOUS is set: access tokens signed with it (kid ${kidForSecret(config.jwt.previousSecret)}) ` +
        `are accepted for ${retirementGraceSeconds(config)} s from this start (ACCESS_TOKEN_TTL_SECONDS and ` +
        'leeway), then refused; none is signed with it. Remove it once JWT_SECRET has changed on every instance',
    )
  }
  if (config.keyEncryptionSecretPrevious !== undefined) {
    notices.push(
      'KEY_ENCRYPTION_SECRET_PREVIOUS is set: what is still encrypted under it is read, and nothing is ' +
        'encrypted under it; once every instance has the new KEY_ENCRYPTION_SECRET, run `npx tessera keys reseal`, then remove it',
    )
  }
  return notices
}
