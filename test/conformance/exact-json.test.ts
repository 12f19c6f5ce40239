/** Exact JSON (src/core/exact-json.ts): what JSON.parse/JSON.stringify would change in a tensor, kept. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotJsonError, parseExact, stringifyExact } from '../../src/core/exact-json.ts';

describe('exact JSON', () => {
  it('reads 64-bit integers beyond 2^53 exactly and keeps -0', () => {
    const doc = parseExact('{"data":[9223372036854775807,-9223372036854775808,18446744073709551615,9007199254740993,1.5e300,-0.0,1]}') as { data: unknown[] };
    assert.deepEqual(doc.data, [2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 2n ** 53n + 1n, 1.5e300, -0, 1]);
    assert.ok(Object.is(doc.data[5], -0));
    assert.equal(stringifyExact(doc), '{"data":[9223372036854775807,-9223372036854775808,18446744073709551615,9007199254740993,1.5e+300,-0.0,1]}');
  });

  it('parses like JSON.parse otherwise: strings with escapes, __proto__ as an own key, bad JSON refused', () => {
    const text = '{"a":"x\\"y\\u00e9","__proto__":{"b":[true,false,null]},"n":12345678901234567}';
    const doc = parseExact(text) as Record<string, unknown>;
    assert.equal(doc['a'], 'x"yé');
    assert.deepEqual(Object.getOwnPropertyDescriptor(doc, '__proto__')?.value, { b: [true, false, null] });
    assert.equal(Object.getPrototypeOf(doc), Object.prototype);
    assert.throws(() => parseExact('{"n":12345678901234567,}'), SyntaxError);
    assert.throws(() => parseExact(`${'['.repeat(100)}12345678901234567${']'.repeat(100)}`), SyntaxError);
  });

  it('refuses NaN and ±Infinity naming where they are, instead of writing null', () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      assert.throws(() => stringifyExact({ outputs: [{ data: [1, v] }] }), (e: unknown) => e instanceof NotJsonError && e.path === 'outputs[0].data[1]');
    }
  });
});
