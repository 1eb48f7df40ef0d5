// AppError is what every 4xx (and the wrapped 5xx) answer is built from. It captures no stack, which is most of
// its cost, and it must leave the process's stack setting as it found it: errors that are faults keep theirs.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AppError } from '../../src/http/problem.ts'

describe('AppError', () => {
  it('captures no stack frames, and keeps its code, status and detail', () => {
    const error = new AppError('invalid_token', 'The token is malformed')
    assert.equal(error.code, 'invalid_token')
    assert.equal(error.status, 401)
    assert.equal(error.message, 'The token is malformed')
    assert.doesNotMatch(String(error.stack), /\n\s+at /)
  })

  it('leaves Error.stackTraceLimit as it was, so that other errors keep their stacks', () => {
    const before = Error.stackTraceLimit
    new AppError('rate_limited')
    assert.equal(Error.stackTraceLimit, before)
    assert.match(String(new Error('a fault').stack), /\n\s+at /)
  })

  it('leaves Error.stackTraceLimit as it was even when building the error fails', () => {
    const before = Error.stackTraceLimit
    assert.throws(() => new AppError('no_such_code' as 'rate_limited'))
    assert.equal(Error.stackTraceLimit, before)
  })
})
