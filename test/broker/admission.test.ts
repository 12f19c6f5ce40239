// The admission predictor alone, on a fake clock: cold → no refusal; warm → refusal exactly when the
// predicted start is past the deadline; a free slot → never; stale → back to no refusal.
import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { DrainEstimate, dispatchesAhead, predict, type DomainView, type FlowView } from '../../src/broker/admission.ts';

beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_000_000 }));
afterEach(() => mock.timers.reset());

const clock = (): number => Date.now();

/** A domain kept backlogged and dispatching `perSecond` for `ms`, sampled every 50 ms (as the broker's tick does). */
function drive(est: DrainEstimate, state: { dispatched: number }, perSecond: number, ms: number, capacity = 2, queued = 50): void {
  for (let t = 0; t < ms; t += 50) {
    mock.timers.tick(50);
    state.dispatched += (perSecond * 50) / 1000;
    est.sample({ dispatched: state.dispatched, queued, capacity });
  }
}

function view(own: FlowView, others: FlowView[] = [], opts: Partial<DomainView> = {}): DomainView {
  return { freeSlot: false, queued: own.queue.length + others.reduce((n, f) => n + f.queue.length, 0), dispatched: 0, capacity: 2, flows: [own, ...others], ...opts };
}

test('cold: no prediction (so no refusal) until enough dispatches were measured under backlog', () => {
  const est = new DrainEstimate({}, clock);
  const st = { dispatched: 0 };
  const own: FlowView = { priority: 0, weight: 1, queue: { length: 900 } };
  est.sample({ dispatched: 0, queued: 900, capacity: 2 });
  assert.equal(predict(est, view(own), own, 900, clock(), clock() + 100), undefined, 'no samples: nothing to predict from');
  drive(est, st, 100, 50); // 5 dispatches: below the 10 required
  assert.equal(predict(est, view(own), own, 900, clock(), clock() + 100), undefined, 'too few dispatches measured');
  // Dispatches while nothing waited say nothing about the accelerator's pace.
  const idle = new DrainEstimate({}, clock);
  const st2 = { dispatched: 0 };
  drive(idle, st2, 100, 4000, 2, 0);
  assert.equal(idle.rate(2), undefined);
});

test('warm: refused exactly when the predicted start is past the deadline; Retry-After is when it would fit', () => {
  const est = new DrainEstimate({}, clock);
  const st = { dispatched: 0 };
  est.sample({ dispatched: 0, queued: 50, capacity: 2 });
  drive(est, st, 100, 1000);
  const rate = est.rate(2);
  assert.ok(rate !== undefined && Math.abs(rate - 100) < 1e-6, `measured ${rate}/s`);
  const now = clock();
  const deadline = now + 2000;
  // At 100/s, position p starts after (p + 1) × 10 ms: p = 199 starts at exactly 2 s, p = 200 after.
  const front: FlowView = { priority: 0, weight: 1, queue: { length: 199 } };
  const fits = predict(est, view(front), front, 199, now, deadline);
  assert.ok(fits && !fits.refuse && Math.abs(fits.waitMs - 2000) < 1e-6, JSON.stringify(fits));
  const own: FlowView = { priority: 0, weight: 1, queue: { length: 200 } };
  const late = predict(est, view(own), own, 200, now, deadline);
  assert.ok(late && late.refuse, JSON.stringify(late));
  assert.ok(Math.abs(late.waitMs - 2010) < 1e-6 && Math.abs(late.retryAfterMs - 10) < 1e-6, JSON.stringify(late));
  // A client deadline shorter than maxWait counts the same way.
  const few: FlowView = { priority: 0, weight: 1, queue: { length: 5 } };
  const short = predict(est, view(few), few, 5, now, now + 50);
  assert.ok(short?.refuse === true && Math.abs(short.retryAfterMs - 10) < 1e-6, JSON.stringify(short));
});

test('a free slot is never refused, however long the queue and however short the deadline', () => {
  const est = new DrainEstimate({}, clock);
  const st = { dispatched: 0 };
  est.sample({ dispatched: 0, queued: 50, capacity: 2 });
  drive(est, st, 100, 1000);
  const own: FlowView = { priority: 0, weight: 1, queue: { length: 5000 } };
  const p = predict(est, view(own, [], { freeSlot: true }), own, 5000, clock(), clock() + 1);
  assert.deepEqual(p, { waitMs: 0, refuse: false, retryAfterMs: 0 });
});

test('an idle sample (an arrival to a free slot with nothing queued) ends a backlogged stretch', () => {
  // Two domains measured alike, then 100 ms in which 50 calls went straight to free slots. Only the
  // one told so by idle() leaves that stretch out of its backlogged rate.
  const told = new DrainEstimate({}, clock);
  const untold = new DrainEstimate({}, clock);
  const a = { dispatched: 0 };
  const b = { dispatched: 0 };
  told.sample({ dispatched: 0, queued: 50, capacity: 2 });
  untold.sample({ dispatched: 0, queued: 50, capacity: 2 });
  for (let t = 0; t < 1000; t += 50) {
    mock.timers.tick(50);
    a.dispatched += 5;
    b.dispatched += 5;
    told.sample({ dispatched: a.dispatched, queued: 50, capacity: 2 });
    untold.sample({ dispatched: b.dispatched, queued: 50, capacity: 2 });
  }
  told.idle();
  mock.timers.tick(100);
  told.sample({ dispatched: a.dispatched + 50, queued: 50, capacity: 2 });
  untold.sample({ dispatched: b.dispatched + 50, queued: 50, capacity: 2 });
  assert.ok(Math.abs((told.rate(2) as number) - 100) < 1e-6, `told: ${told.rate(2)}/s`);
  assert.ok(Math.abs((untold.rate(2) as number) - 100) > 10, `untold: ${untold.rate(2)}/s counts the free-slot calls as backlog`);
});

test('stale: a rate not measured for a whole window is forgotten', () => {
  const est = new DrainEstimate({}, clock);
  const st = { dispatched: 0 };
  est.sample({ dispatched: 0, queued: 50, capacity: 2 });
  drive(est, st, 100, 1000);
  assert.ok(est.rate(2) !== undefined);
  mock.timers.tick(2500);
  assert.ok(est.rate(2) !== undefined, 'still within the 4 s window');
  mock.timers.tick(1600);
  assert.equal(est.rate(2), undefined, 'older than the window: cold again');
  // A gap between samples longer than maxGap is not counted as backlogged time.
  est.sample({ dispatched: st.dispatched, queued: 50, capacity: 2 });
  mock.timers.tick(1000);
  est.sample({ dispatched: st.dispatched + 100, queued: 50, capacity: 2 });
  assert.equal(est.rate(2), undefined);
});

test('healthy slots scale the rate at once; a large fall is reported once for re-evaluation', () => {
  const est = new DrainEstimate({}, clock);
  const st = { dispatched: 0 };
  est.sample({ dispatched: 0, queued: 50, capacity: 4 });
  drive(est, st, 200, 1000, 4);
  assert.ok(Math.abs((est.rate(4) ?? 0) - 200) < 1e-6);
  assert.equal(est.dropped(4), false, 'first value sets the reference');
  assert.ok(Math.abs((est.rate(2) ?? 0) - 100) < 1e-6, 'half the slots healthy: half the rate');
  assert.equal(est.dropped(2), true);
  assert.equal(est.dropped(2), false, 'reported once');
  assert.equal(est.dropped(4), false, 'a rise only raises the reference');
  assert.equal(est.dropped(3.2), false, 'a 20% fall is within noise');
});

test('dispatches ahead follow strict priority and the weights of the level', () => {
  const own: FlowView = { priority: 0, weight: 1, queue: { length: 10 } };
  const higher: FlowView = { priority: 5, weight: 1, queue: { length: 7 } };
  const lower: FlowView = { priority: -1, weight: 1, queue: { length: 1000 } };
  const peerBig: FlowView = { priority: 0, weight: 3, queue: { length: 1000 } };
  const peerSmall: FlowView = { priority: 0, weight: 3, queue: { length: 4 } };
  assert.equal(dispatchesAhead([own], own, 10), 10);
  assert.equal(dispatchesAhead([own, higher, lower], own, 10), 17, 'higher backlog goes first; lower never');
  assert.equal(dispatchesAhead([own, peerBig], own, 10), 10 + 33, 'a weight-3 peer gets 3 per own dispatch');
  assert.equal(dispatchesAhead([own, peerSmall], own, 10), 14, 'at most what the peer has queued');
  // The weight-3 side of a 3:1 split waits a third as long per position.
  const a: FlowView = { priority: 0, weight: 3, queue: { length: 300 } };
  const b: FlowView = { priority: 0, weight: 1, queue: { length: 300 } };
  assert.equal(dispatchesAhead([a, b], a, 299), 299 + 100);
  assert.equal(dispatchesAhead([a, b], b, 99), 99 + 300);
});
