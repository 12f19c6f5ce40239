// Sharing by accelerator time, not request count: groups calling models of different cost.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelServer } from '../../src/demo/index.ts';
import type { Gateway } from '../../src/compose/gateway.ts';
import { accelerator, acceleratorProcess, closedLoop, delay, gateway, keyFor, pool, INFER_BODY } from '../helpers/harness.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

const SLOW_MS = 40;
const FAST_MS = 10;

interface Setup {
  gw: Gateway;
  p: ReturnType<typeof pool>;
  acc: ModelServer | undefined;
}

/**
 * Group x calls a 40 ms model, group y a 10 ms model, on one 2-slot accelerator. By default the
 * accelerator runs in its own process, so its service times are not disturbed by this one.
 */
async function setup(fairness: 'compute' | 'requests', weights: [number, number], inProcess = false): Promise<Setup> {
  let url: string;
  let acc: ModelServer | undefined;
  if (inProcess) {
    acc = await accelerator({ slots: 2, models: [{ name: 'slow', serviceTime: SLOW_MS }, { name: 'fast', serviceTime: FAST_MS }] });
    closers.push(() => acc!.close());
    url = acc.url;
  } else {
    const child = await acceleratorProcess(['--slots', '2', '--models', `slow=${SLOW_MS}ms,fast=${FAST_MS}ms`]);
    closers.push(() => child.close());
    url = child.url;
  }
  const gw = await gateway({
    endpoints: [{ url, slots: 2 }],
    models: ['slow', 'fast'],
    groups: [{ name: 'x', weight: weights[0] }, { name: 'y', weight: weights[1] }],
    gateway: { fairness },
  });
  const p = pool(gw.httpUrl);
  closers.push(() => gw.close(), () => p.close());
  return { acc, gw, p };
}

interface Split {
  slowN: number;
  fastN: number;
  /** Accelerator time of the slow model's group: requests served × their fixed service time. */
  slowMs: number;
  fastMs: number;
  /** The slow group's share of pure compute time (served × service time, seen from outside). */
  share: number;
  /**
   * The slow group's share of slot time as ModelGuard accounts it: from leaving the queue to the
   * full answer (the definition of accelerator time, transport included).
   */
  slotShare: number;
}

/** Both groups overload the accelerator for `totalMs`; answers completed in (fromMs, toMs] are counted. */
async function measure(s: Setup, fromMs: number, toMs: number, totalMs = toMs + 100, slowMsAt: (t: number) => number = () => SLOW_MS, during?: () => Promise<void>): Promise<Split> {
  const t0 = performance.now();
  const until = delay(totalMs);
  const groupMs = (): Record<string, number> => Object.fromEntries(s.gw.broker.status().groups.map((g) => [g.name, g.acceleratorMs]));
  let fromAcct: Record<string, number> = {};
  let toAcct: Record<string, number> = {};
  const marks = (async () => {
    await delay(fromMs);
    fromAcct = groupMs();
    await delay(toMs - fromMs);
    toAcct = groupMs();
  })();
  const [slow, fast] = await Promise.all([
    closedLoop(s.p, '/v2/models/slow/infer', { key: keyFor('x'), body: INFER_BODY, concurrency: 8, until }),
    closedLoop(s.p, '/v2/models/fast/infer', { key: keyFor('y'), body: INFER_BODY, concurrency: 8, until }),
    during?.(),
    marks,
  ]);
  const dx = (toAcct['x'] ?? 0) - (fromAcct['x'] ?? 0);
  const dy = (toAcct['y'] ?? 0) - (fromAcct['y'] ?? 0);
  const inWindow = (a: { at: number; status: number }): boolean => a.status === 200 && a.at - t0 > fromMs && a.at - t0 <= toMs;
  const slowServed = slow.filter(inWindow);
  const fastN = fast.filter(inWindow).length;
  const slowMs = slowServed.reduce((n, a) => n + slowMsAt(a.at - t0), 0);
  const fastMs = fastN * FAST_MS;
  return { slowN: slowServed.length, fastN, slowMs, fastMs, share: slowMs / (slowMs + fastMs), slotShare: dx / (dx + dy) };
}

test('compute fairness, weights 1:1, a 40 ms and a 10 ms model: accelerator time splits 50/50 within 5% (counts about 1:4)', { timeout: 30_000 }, async () => {
  const w = await measure(await setup('compute', [1, 1]), 700, 3700);
  const seen = `slot-time share ${w.slotShare.toFixed(3)}, compute share ${w.share.toFixed(3)} (served ${w.slowN} slow, ${w.fastN} fast)`;
  assert.ok(Math.abs(w.slotShare - 0.5) <= 0.025, seen);
  // Seen from outside, pure compute: the cheap model also pays its transport as slot time (~1 ms here).
  assert.ok(Math.abs(w.share - 0.5) <= 0.05, seen);
  const countRatio = w.fastN / w.slowN;
  // About 1:4; below 4 by the transport time each cheap call also holds its slot for.
  assert.ok(countRatio > 3 && countRatio < 4.6, `served fast:slow = ${w.fastN}:${w.slowN}`);
});

test('request fairness, same load: served counts split 1:1 instead (and time 4:1)', { timeout: 30_000 }, async () => {
  const w = await measure(await setup('requests', [1, 1]), 700, 3700);
  assert.ok(Math.abs(w.fastN / w.slowN - 1) <= 0.05, `served fast:slow = ${w.fastN}:${w.slowN}`);
  assert.ok(Math.abs(w.share - 0.8) <= 0.04, `the expensive model takes 4/5 of the accelerator: ${w.share.toFixed(3)}`);
});

test('compute fairness, weights 3:1 → accelerator time 75/25 within 5%', { timeout: 30_000 }, async () => {
  const w = await measure(await setup('compute', [3, 1]), 700, 3700);
  const seen = `slot-time share ${w.slotShare.toFixed(3)}, compute share ${w.share.toFixed(3)} (served ${w.slowN} slow, ${w.fastN} fast)`;
  assert.ok(Math.abs(w.slotShare - 0.75) <= 0.0375, seen);
  assert.ok(Math.abs(w.share - 0.75) <= 0.05, seen);
});

test('the slow model doubles its service time mid-run: the time split is back on target within 2 s', { timeout: 30_000 }, async () => {
  const s = await setup('compute', [1, 1], true);
  const CHANGE = 1000;
  // Answers completing more than 80 ms after the change ran at the new service time.
  const w = await measure(s, CHANGE + 2000, CHANGE + 4000, CHANGE + 4100, (t) => (t > CHANGE + 80 ? 2 * SLOW_MS : SLOW_MS), async () => {
    await delay(CHANGE);
    s.acc!.setServiceTime('slow', 2 * SLOW_MS);
  });
  const seen = `from 2 s after the change: slot-time share ${w.slotShare.toFixed(3)}, compute share ${w.share.toFixed(3)} (served ${w.slowN} slow, ${w.fastN} fast)`;
  assert.ok(Math.abs(w.slotShare - 0.5) <= 0.025, seen);
  // The accelerator shares this process here (so its service time can change mid-run): the
  // transport each cheap call holds its slot for is larger, and the outside view drifts further.
  assert.ok(Math.abs(w.share - 0.5) <= 0.075, seen);
  const est = s.gw.broker.cost.measured('accel', 'slow');
  assert.ok(est !== undefined && est > 1.7 * SLOW_MS, `the slow model's cost estimate followed the backend: ${est?.toFixed(1)}ms`);
});

test('LLM calls are charged by tokens: long generations do not crowd out short ones', { timeout: 30_000 }, async () => {
  const API = 'modelguard.io/v1alpha1';
  const acc = await accelerator({ slots: 2, models: ['demo'], tokenMs: 2, serviceTime: 2 });
  closers.push(() => acc.close());
  const gw = await gateway({
    endpoints: [{ url: acc.url, slots: 2 }],
    groups: [{ name: 'x' }, { name: 'y' }],
    backend: { protocol: 'openai' },
    extra: [{ apiVersion: API, kind: 'Model', metadata: { name: 'chat' }, spec: { backend: 'accel', backendModel: 'demo' } }],
  });
  const p = pool(gw.httpUrl);
  closers.push(() => gw.close(), () => p.close());
  const body = (maxTokens: number): string => JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'describe the scene' }], max_tokens: maxTokens, min_tokens: maxTokens });
  const until = delay(3000);
  const marks: Record<string, number>[] = [];
  const acct = (): Record<string, number> => Object.fromEntries(gw.broker.status().groups.map((g) => [g.name, g.acceleratorMs]));
  const [long, short] = await Promise.all([
    closedLoop(p, '/v1/chat/completions', { key: keyFor('x'), body: body(40), concurrency: 6, until }),
    closedLoop(p, '/v1/chat/completions', { key: keyFor('y'), body: body(4), concurrency: 6, until }),
    (async () => {
      await delay(700);
      marks.push(acct());
      await delay(2200);
      marks.push(acct());
    })(),
  ]);
  assert.ok(long.every((a) => a.status === 200) && short.every((a) => a.status === 200));
  const dx = marks[1]!['x']! - marks[0]!['x']!;
  const dy = marks[1]!['y']! - marks[0]!['y']!;
  const share = dx / (dx + dy);
  assert.ok(Math.abs(share - 0.5) <= 0.05, `long-generation group's slot-time share ${share.toFixed(3)}`);
  assert.ok(short.length > 3 * long.length, `short calls served ${short.length} vs long ${long.length}`);
});
