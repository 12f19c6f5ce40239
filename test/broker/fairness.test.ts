// The fairness policy contract, run over every implementation (today: virtual time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualTimePolicy, type VirtualTimeFlow } from '../../src/broker/fairness/virtual-time.ts';
import type { FairnessPolicy } from '../../src/broker/fairness/interface.ts';

let seq = 0;
function flow(name: string, weight: number, priority = 0): VirtualTimeFlow {
  return { name, weight, priority, pass: 0, seq: seq++, heapIndex: -1 };
}

const implementations: [string, () => FairnessPolicy<VirtualTimeFlow>][] = [['virtual-time', () => new VirtualTimePolicy()]];

/** Serves `n` decisions with every flow permanently backlogged; returns units served per flow. */
function serve(p: FairnessPolicy<VirtualTimeFlow>, n: number, cost: (f: VirtualTimeFlow) => number = () => 1): Map<string, number> {
  const served = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const f = p.peek();
    assert.ok(f);
    served.set(f.name, (served.get(f.name) ?? 0) + 1);
    p.charge(f, cost(f), true);
  }
  return served;
}

for (const [name, make] of implementations) {
  test(`${name}: weights 3:1 split decisions exactly 3:1`, () => {
    const p = make();
    const a = flow('a', 3);
    const b = flow('b', 1);
    p.activate(a);
    p.activate(b);
    const s = serve(p, 4000);
    assert.equal(s.get('a'), 3000);
    assert.equal(s.get('b'), 1000);
  });

  test(`${name}: charging by cost shares cost, not count`, () => {
    const p = make();
    const slow = flow('slow', 1);
    const fast = flow('fast', 1);
    p.activate(slow);
    p.activate(fast);
    const s = serve(p, 5000, (f) => (f === slow ? 40 : 10));
    // Equal weights, 4× cost: four fast calls per slow call.
    const ratio = (s.get('fast') ?? 0) / (s.get('slow') ?? 1);
    assert.ok(Math.abs(ratio - 4) < 0.01, `ratio ${ratio}`);
  });

  test(`${name}: strict priority — a lower level is never picked while a higher one is backlogged`, () => {
    const p = make();
    const hi = flow('hi', 1, 10);
    const lo = flow('lo', 100, 0);
    p.activate(lo);
    p.activate(hi);
    for (let i = 0; i < 100; i++) {
      assert.equal(p.peek(), hi);
      p.charge(hi, 1, true);
    }
    p.charge(hi, 1, false);
    assert.equal(p.peek(), lo);
  });

  test(`${name}: an idle flow earns no credit (work conservation without bursts)`, () => {
    const p = make();
    const a = flow('a', 1);
    const b = flow('b', 1);
    p.activate(a);
    serve(p, 1000); // only a is backlogged: it gets everything
    p.activate(b);
    const s = serve(p, 200);
    // b must not monopolise to "catch up" for the time it was idle.
    assert.equal(s.get('a'), 100);
    assert.equal(s.get('b'), 100);
  });

  test(`${name}: corrections make the measured cost count, not the estimate`, () => {
    const p = make();
    const a = flow('a', 1);
    const b = flow('b', 1);
    p.activate(a);
    p.activate(b);
    const served = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const f = p.peek()!;
      served.set(f.name, (served.get(f.name) ?? 0) + 1);
      p.charge(f, 10, true); // both estimated at 10
      p.correct(f, f === a ? 30 : 0); // a really costs 40
    }
    const ratio = (served.get('b') ?? 0) / (served.get('a') ?? 1);
    assert.ok(Math.abs(ratio - 4) < 0.05, `ratio ${ratio}`);
  });

  test(`${name}: deactivate removes a flow; decisions are deterministic`, () => {
    const run = (): string[] => {
      const p = make();
      const fs = [flow('x', 2), flow('y', 1), flow('z', 1)];
      for (const f of fs) p.activate(f);
      const order: string[] = [];
      for (let i = 0; i < 12; i++) {
        const f = p.peek()!;
        order.push(f.name);
        p.charge(f, 1, true);
      }
      p.deactivate(fs[0]!);
      for (let i = 0; i < 4; i++) {
        const f = p.peek()!;
        assert.notEqual(f.name, 'x');
        p.charge(f, 1, true);
      }
      return order;
    };
    seq = 0;
    const first = run();
    seq = 0;
    assert.deepEqual(run(), first);
  });
}
