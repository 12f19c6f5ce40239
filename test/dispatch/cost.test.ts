import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CostModel, PRIOR_MS } from '../../src/dispatch/cost.ts';

test('cost model: a fixed prior for a backend with no history, then the mean of the models it has measured', () => {
  const c = new CostModel();
  assert.equal(c.estimate('b', 'new'), PRIOR_MS);
  c.observe('b', 'det', 40);
  c.observe('b', 'cls', 4);
  assert.equal(c.estimate('b', 'unknown'), 22);
  assert.equal(c.estimate('other', 'x'), PRIOR_MS, 'backends do not share estimates');
});

test('cost model: follows a backend that slows down within a few requests', () => {
  const c = new CostModel();
  for (let i = 0; i < 20; i++) c.observe('b', 'm', 40);
  let n = 0;
  while (c.estimate('b', 'm') < 72 && n < 100) {
    c.observe('b', 'm', 80);
    n++;
  }
  assert.ok(n <= 10, `reached 90% of the new cost after ${n} requests`);
});

test('cost model: LLM calls are estimated per token and corrected from the tokens actually used', () => {
  const c = new CostModel();
  c.observe('llm', 'chat', 200, 100); // 2 ms per token
  assert.equal(c.estimate('llm', 'chat', 50), 100);
  c.observe('llm', 'chat', 300, 100); // the backend got slower per token
  assert.ok(c.estimate('llm', 'chat', 50) > 100);
});
