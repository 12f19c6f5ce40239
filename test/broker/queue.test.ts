import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkedQueue } from '../../src/broker/queue.ts';
import { IndexedHeap } from '../../src/broker/heap.ts';
import { RateMeter } from '../../src/broker/rate.ts';

test('linked queue: FIFO order, O(1) removal from the middle, double removal ignored', () => {
  const q = new LinkedQueue<number>();
  const nodes = [1, 2, 3, 4, 5].map((n) => q.push(n));
  assert.equal(q.remove(nodes[2]!), true);
  assert.equal(q.remove(nodes[2]!), false);
  q.unshift(0);
  assert.deepEqual([...q], [0, 1, 2, 4, 5]);
  assert.equal(q.length, 5);
  assert.equal(q.shift(), 0);
  assert.equal(q.remove(nodes[4]!), true);
  assert.deepEqual([...q], [1, 2, 4]);
});

test('indexed heap agrees with a sorted array under random pushes, updates and removals', () => {
  interface Item { key: number; heapIndex: number }
  const h = new IndexedHeap<Item>((a, b) => a.key < b.key);
  const live: Item[] = [];
  let seed = 42;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 5000; i++) {
    const r = rnd();
    if (r < 0.5 || live.length === 0) {
      const it = { key: rnd(), heapIndex: -1 };
      h.push(it);
      live.push(it);
    } else if (r < 0.75) {
      const it = live[Math.floor(rnd() * live.length)]!;
      it.key = rnd();
      h.update(it);
    } else {
      const idx = Math.floor(rnd() * live.length);
      h.remove(live[idx]!);
      live.splice(idx, 1);
    }
    const min = Math.min(...live.map((x) => x.key));
    if (live.length) assert.equal(h.peek()!.key, min);
    assert.equal(h.size, live.length);
  }
});

test('rate meter: measures events per second over its window and forgets old ones', () => {
  let now = 0;
  const m = new RateMeter(2000, 20, () => now);
  for (let t = 0; t < 2000; t += 10) {
    now = t;
    m.add();
  }
  now = 2000;
  assert.ok(Math.abs(m.rate() - 100) < 6, `rate ${m.rate()}`);
  now = 5000;
  assert.equal(m.rate(), 0);
});
