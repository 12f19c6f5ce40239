import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS, MGError } from '../../src/core/errors.ts';

test('every error code is documented in docs/errors.md with its HTTP status', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const [code, spec] of Object.entries(ERRORS)) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} has no row in docs/errors.md`);
    assert.ok(row.includes(`| ${spec.http}`), `${code} row does not state HTTP ${spec.http}`);
  }
});

test('Retry-After is whole seconds, at least 1, rounded up', () => {
  assert.equal(new MGError('MG_QUEUE_FULL', 'x', { retryAfterMs: 1 }).retryAfterSeconds, 1);
  assert.equal(new MGError('MG_QUEUE_FULL', 'x', { retryAfterMs: 2001 }).retryAfterSeconds, 3);
  assert.equal(new MGError('MG_FORBIDDEN').retryAfterSeconds, undefined);
  assert.equal(new MGError('MG_BAD_REQUEST', 'x', { httpStatus: 405 }).httpStatus, 405);
});
