import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Accelerator, type Slot } from '../../src/demo/accelerator.ts';
import { formatServiceTime, parseServiceTime, sampleServiceTime, seededRandom } from '../../src/demo/service-time.ts';

describe('Accelerator (slots and FIFO line)', () => {
  test('grants synchronously while slots are free, then queues in FIFO order', () => {
    const acc = new Accelerator(2);
    const order: string[] = [];
    const held = new Map<string, Slot>();
    for (const id of ['a', 'b', 'c', 'd']) acc.acquire('m', (slot) => { order.push(id); held.set(id, slot); });
    assert.deepEqual(order, ['a', 'b']);
    assert.deepEqual({ inService: acc.stats().inService, waiting: acc.stats().waiting }, { inService: 2, waiting: 2 });
    acc.release(held.get('b')!);
    assert.deepEqual(order, ['a', 'b', 'c']);
    acc.release(held.get('a')!);
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
    assert.equal(acc.stats().peakConcurrency, 2);
    assert.equal(acc.stats().models['m']?.served, 2);
  });

  test('a cancelled waiter never gets a slot; double release is ignored', () => {
    const acc = new Accelerator(1);
    let first: Slot | undefined;
    acc.acquire('m', (s) => (first = s));
    let granted = false;
    const ticket = acc.acquire('m', () => (granted = true));
    assert.equal(acc.stats().waiting, 1);
    ticket.cancel();
    ticket.cancel();
    assert.equal(acc.stats().waiting, 0);
    acc.release(first!);
    acc.release(first!);
    assert.equal(granted, false);
    assert.deepEqual({ ...acc.stats().models['m'], busyMs: 0 }, { served: 1, cancelled: 1, failed: 0, busyMs: 0 });
    assert.equal(acc.stats().inService, 0);
  });

  test('a long line of zero-time requests does not grow the stack', () => {
    const acc = new Accelerator(1);
    let done = 0;
    let blocker: Slot | undefined;
    acc.acquire('m', (s) => (blocker = s));
    for (let i = 0; i < 100_000; i++) acc.acquire('m', (s) => { done++; acc.release(s); });
    acc.release(blocker!);
    assert.equal(done, 100_000);
    assert.equal(acc.stats().waiting, 0);
  });

  test('reset drops the line and frees the slots; stale releases are ignored', () => {
    const acc = new Accelerator(1);
    let slot: Slot | undefined;
    acc.acquire('a', (s) => (slot = s));
    acc.acquire('b', () => assert.fail('must not be granted after reset'));
    acc.reset();
    assert.deepEqual({ inService: acc.stats().inService, waiting: acc.stats().waiting }, { inService: 0, waiting: 0 });
    acc.release(slot!);
    assert.equal(acc.stats().inService, 0);
    assert.equal(acc.stats().models['a']?.cancelled, 1);
    assert.equal(acc.stats().models['b']?.cancelled, 1);
    let again = false;
    acc.acquire('a', () => (again = true));
    assert.equal(again, true);
  });

  test('counts per model and rejects bad slot counts', () => {
    assert.throws(() => new Accelerator(0), /slots/);
    const acc = new Accelerator(3);
    acc.count('idle');
    assert.deepEqual(acc.stats().models['idle'], { served: 0, cancelled: 0, failed: 0, busyMs: 0 });
  });
});

describe('service time specs', () => {
  test('parses numbers, durations, ranges and exponentials', () => {
    assert.deepEqual(parseServiceTime(20), { kind: 'fixed', ms: 20 });
    assert.deepEqual(parseServiceTime('1s'), { kind: 'fixed', ms: 1000 });
    assert.deepEqual(parseServiceTime('10ms..30ms'), { kind: 'uniform', minMs: 10, maxMs: 30 });
    assert.deepEqual(parseServiceTime('uniform:5..7'), { kind: 'uniform', minMs: 5, maxMs: 7 });
    assert.deepEqual(parseServiceTime('exp:20ms'), { kind: 'exponential', meanMs: 20 });
    assert.deepEqual(parseServiceTime({ kind: 'exponential', meanMs: 3 }), { kind: 'exponential', meanMs: 3 });
    assert.equal(formatServiceTime(parseServiceTime('uniform:1ms..2ms')), 'uniform:1ms..2ms');
  });

  test('a batch-aware service time adds a per-row cost for every row after the first', () => {
    const st = parseServiceTime('20ms+1ms/row');
    assert.deepEqual(st, { kind: 'fixed', ms: 20, perRowMs: 1 });
    assert.equal(formatServiceTime(st), '20ms+1ms/row');
    const r = seededRandom(1);
    assert.deepEqual([1, 2, 8].map((rows) => sampleServiceTime(st, r, rows)), [20, 21, 27]);
    assert.deepEqual(parseServiceTime('exp:5ms + 0.5ms/row'), { kind: 'exponential', meanMs: 5, perRowMs: 0.5 });
    assert.throws(() => parseServiceTime('20ms+fast/row'), /not a duration/);
  });

  test('rejects nonsense with a message', () => {
    assert.throws(() => parseServiceTime('fast'), /not a duration/);
    assert.throws(() => parseServiceTime('30ms..10ms'), /min 30ms > max 10ms/);
    assert.throws(() => parseServiceTime(-1), /≥ 0/);
    assert.throws(() => parseServiceTime('gamma:3ms'), /unknown kind/);
  });

  test('samples are repeatable for a seed and stay in range', () => {
    const uniform = parseServiceTime('10ms..30ms');
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => sampleServiceTime(uniform, a));
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => sampleServiceTime(uniform, b)));
    assert.ok(xs.every((x) => x >= 10 && x <= 30));
    const exp = parseServiceTime('exp:20ms');
    const r = seededRandom(7);
    const mean = Array.from({ length: 20_000 }, () => sampleServiceTime(exp, r)).reduce((s, x) => s + x, 0) / 20_000;
    assert.ok(Math.abs(mean - 20) < 1, `sample mean ${mean}`);
  });
});
