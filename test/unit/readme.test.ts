import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { withConfigTable } from '../../src/config/config-docs.ts'

describe('README', () => {
  it('documents every environment variable exactly as the config schema declares it (npm run docs:config)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    assert.equal(readme, withConfigTable(readme))
  })
})
