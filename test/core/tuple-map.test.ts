// TupleMap: a value per tuple of strings, found again by the same tuple, made once, listed in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TupleMap } from '../../src/core/tuple-map.ts';

test('the same tuple finds the same value; a different tuple makes its own, once', () => {
  const made: string[][] = [];
  const m = new TupleMap(3, (keys) => {
    made.push([...keys]);
    return { keys: keys.join('/'), n: 0 };
  });
  m.at('g', 'model', 'http').n++;
  m.at('g', 'model', 'http').n++;
  m.at('g', 'model', 'grpc').n++;
  // Tuples whose joined forms would meet are still apart.
  m.at('a\u0000b', 'c', '').n++;
  m.at('a', 'b\u0000c', '').n++;
  assert.deepEqual(made, [['g', 'model', 'http'], ['g', 'model', 'grpc'], ['a\u0000b', 'c', ''], ['a', 'b\u0000c', '']]);
  assert.deepEqual(m.values().map((v) => [v.keys, v.n]), [['g/model/http', 2], ['g/model/grpc', 1], ['a\u0000b/c/', 1], ['a/b\u0000c/', 1]]);
  assert.equal(m.size, 4);
});

test('arity 0 holds one value, arity 1 and 5 use their first keys; clear forgets everything', () => {
  const none = new TupleMap(0, () => ({ n: 0 }));
  none.at().n++;
  none.at('ignored').n++;
  assert.deepEqual(none.values(), [{ n: 2 }]);
  const one = new TupleMap(1, ([k]) => k);
  assert.equal(one.at('x', 'ignored'), 'x');
  assert.equal(one.at('x'), 'x');
  assert.equal(one.size, 1);
  const five = new TupleMap(5, (keys) => keys.join(','));
  assert.equal(five.at('a', 'b', 'c', 'd', 'e'), 'a,b,c,d,e');
  assert.equal(five.at('a', 'b', 'c', 'd', 'f'), 'a,b,c,d,f');
  assert.equal(five.at('a', 'b'), 'a,b,,,', 'missing keys count as empty strings');
  five.clear();
  assert.equal(five.size, 0);
  assert.equal(five.at('a', 'b', 'c', 'd', 'e'), 'a,b,c,d,e');
  assert.equal(five.size, 1);
  assert.throws(() => new TupleMap(6, () => 0), /arity 6/);
});
