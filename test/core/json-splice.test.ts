// Top-level fields set in a JSON object's text: only the value's bytes change, the rest (tensors
// with -0.0 and 2^63−1, strings holding braces and quotes) stays byte for byte.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTopLevel, topLevelSpans } from '../../src/core/json-splice.ts';

const set = (text: string, key: string, json: string): string | undefined => setTopLevel(Buffer.from(text), key, json)?.toString('utf8');

describe('json-splice', () => {
  it('replaces a top-level value and leaves every other byte as written', () => {
    const text = '{ "model_name" : "ident", "outputs":[{"name":"model_name","data":[-0.0,9223372036854775807,1.0]}], "x":"}{\\"model_name\\":1"}';
    const out = set(text, 'model_name', '"id-h"');
    assert.equal(out, text.replace('"ident"', '"id-h"'));
    assert.deepEqual(JSON.parse(out ?? '').outputs, JSON.parse(text).outputs);
  });

  it('finds a key written with escapes, and every repeat of it', () => {
    const text = '{"model\\u005fname":"a","b":[1,{"model_name":"inner"}],"model_name":"c"}';
    const spans = topLevelSpans(Buffer.from(text), 'model_name') ?? [];
    assert.deepEqual(spans.map((s) => text.slice(s.start, s.end)), ['"a"', '"c"']);
    assert.equal(set(text, 'model_name', '"z"'), '{"model\\u005fname":"z","b":[1,{"model_name":"inner"}],"model_name":"z"}');
  });

  it('adds the field first when the object has none', () => {
    assert.equal(set('{"outputs":[]}', 'id', '7'), '{"id":7,"outputs":[]}');
    assert.equal(set(' { } ', 'id', '"a"'), ' {"id":"a" } ');
  });

  it('values of every kind are skipped whole', () => {
    const text = '{"a":true,"b":null,"c":-1.5e-3,"d":{"e":[[],{}]},"f":"\\\\","id":1}';
    assert.equal(set(text, 'id', '18446744073709551615'), text.replace('"id":1', '"id":18446744073709551615'));
  });

  it('refuses what is not one JSON object it can follow', () => {
    for (const bad of ['', '[1]', '"s"', '{"a":', '{"a":"unterminated}', '{"a":[1,2}', '{"a" 1}', '{"a":1 "b":2}', '<html>']) {
      assert.equal(topLevelSpans(Buffer.from(bad), 'a'), undefined, bad);
      assert.equal(setTopLevel(Buffer.from(bad), 'a', '1'), undefined, bad);
    }
  });

  it('agrees with JSON.parse on 2,000 generated objects (strings with quotes, escapes, brackets, non-ASCII)', () => {
    let seed = 15;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const atoms = ['"', '\\', '[', ']', '{', '}', ',', ':', 'é', '€', '\n', 'a', ' '];
    const str = (): string => Array.from({ length: rnd(6) }, () => atoms[rnd(atoms.length)]).join('');
    const value = (depth: number): unknown => {
      const k = rnd(depth > 3 ? 4 : 6);
      if (k === 0) return str();
      if (k === 1) return rnd(2) === 0 ? -0.5 : rnd(1000);
      if (k === 2) return rnd(2) === 0;
      if (k === 3) return null;
      if (k === 4) return Array.from({ length: rnd(4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: rnd(4) }, () => [rnd(2) === 0 ? 'model_name' : str(), value(depth + 1)]));
    };
    for (let n = 0; n < 2000; n++) {
      const doc = Object.fromEntries(Array.from({ length: rnd(5) }, () => [rnd(3) === 0 ? 'model_name' : str(), value(0)]));
      const text = JSON.stringify(doc, null, rnd(2) === 0 ? undefined : 1);
      const out = set(text, 'model_name', '"renamed"');
      assert.deepEqual(JSON.parse(out ?? 'null'), { ...doc, model_name: 'renamed' }, text);
    }
  });

  it('scans deep nesting without recursion', () => {
    const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)},"model_name":"m"}`;
    assert.equal(set(deep, 'model_name', '"n"')?.endsWith('"model_name":"n"}'), true);
  });
});
