// Replicas that die and come back, backends that fail, hang or answer garbage.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { accelerator, closedLoop, delay, gateway, keyFor, pool, send, INFER_BODY } from '../helpers/harness.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

test('a replica killed mid-load is ejected and its work goes to the other; when it comes back it is used again', { timeout: 30_000 }, async () => {
  const r1 = await accelerator({ slots: 2, serviceTime: 5 });
  const r2 = await accelerator({ slots: 2, serviceTime: 5 });
  closers.push(() => r1.close(), () => r2.close());
  const gw = await gateway({ endpoints: [{ url: r1.url, slots: 2 }, { url: r2.url, slots: 2 }], groups: [{ name: 'a' }] });
  const p = pool(gw.httpUrl);
  closers.push(() => gw.close(), () => p.close());

  let stopped = 0;
  let restarted = 0;
  let servedByR2BeforeRestart = 0;
  const chaos = (async () => {
    await delay(500);
    await r2.stop();
    stopped = performance.now();
    await delay(800);
    servedByR2BeforeRestart = r2.stats().models['demo']?.served ?? 0;
    await r2.restart();
    restarted = performance.now();
  })();
  const answers = await closedLoop(p, '/v2/models/demo/infer', { key: keyFor('a'), concurrency: 8, until: delay(2500) });
  await chaos;
  const failed = answers.filter((a) => a.status !== 200);
  assert.deepEqual(failed.map((a) => `${a.status} ${a.code}`), [], 'in-flight work on the dead replica was retried on the live one');
  const duringOutage = answers.filter((a) => a.at > stopped && a.at < restarted).length;
  assert.ok(duringOutage > 50, `served during the outage: ${duringOutage}`);
  const ep2 = gw.broker.status().endpoints.find((e) => e.url === r2.url)!;
  assert.ok(ep2.failures >= 1, 'the dead replica was noticed');
  assert.equal(ep2.healthy, true, 'and readmitted');
  const servedAfter = (r2.stats().models['demo']?.served ?? 0) - servedByR2BeforeRestart;
  assert.ok(servedAfter > 20, `the returned replica serves again: ${servedAfter} after restart`);
});

test('every replica down: queued and new work answered 503 MG_NO_BACKEND at once, not at the deadline', { timeout: 30_000 }, async () => {
  const r1 = await accelerator({ slots: 1, serviceTime: 50 });
  closers.push(() => r1.close());
  const gw = await gateway({ endpoints: [{ url: r1.url, slots: 1 }], groups: [{ name: 'a', maxWait: '20s' }] });
  const p = pool(gw.httpUrl);
  closers.push(() => gw.close(), () => p.close());
  const inflight = Array.from({ length: 4 }, () => send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY }));
  await delay(20);
  const t0 = performance.now();
  await r1.stop();
  const answers = await Promise.all(inflight);
  assert.ok(performance.now() - t0 < 2000, 'answered quickly, not after maxWait');
  for (const a of answers) {
    assert.ok(a.code === 'MG_NO_BACKEND' || a.code === 'MG_BACKEND_ERROR', `${a.status} ${a.code}`);
    assert.ok(a.status === 503 || a.status === 502);
  }
  const next = await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY });
  assert.equal(next.status, 503);
  assert.equal(next.code, 'MG_NO_BACKEND');
  assert.ok(next.retryAfter !== undefined);
  const ready = await send(p, '/v2/health/ready');
  assert.equal(ready.status, 503);
  await r1.restart();
  await delay(400);
  assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })).status, 200);
});

test('backend answering garbage → 502 MG_BACKEND_ERROR; 5xx → 502; hanging → 504 MG_BACKEND_TIMEOUT; the process keeps serving', { timeout: 30_000 }, async () => {
  const acc = await accelerator({ slots: 2, serviceTime: 1 });
  closers.push(() => acc.close());
  const gw = await gateway({
    endpoints: [{ url: acc.url, slots: 2 }],
    groups: [{ name: 'a' }],
    backend: { timeout: '300ms', healthCheck: { interval: '5s', timeout: '1s', failureThreshold: 100 } },
  });
  const p = pool(gw.httpUrl);
  closers.push(() => gw.close(), () => p.close());
  const infer = (): Promise<Awaited<ReturnType<typeof send>>> => send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY });

  acc.setFault('garbage', 'inference');
  const g = await infer();
  assert.equal(g.status, 502);
  assert.equal(g.code, 'MG_BACKEND_ERROR');
  assert.match(g.body, /invalid JSON/);

  acc.setFault('error500', 'inference');
  const e = await infer();
  assert.equal(e.status, 502);
  assert.equal(e.code, 'MG_BACKEND_ERROR');

  acc.setFault('hang', 'inference');
  const t0 = performance.now();
  const h = await infer();
  assert.equal(h.status, 504);
  assert.equal(h.code, 'MG_BACKEND_TIMEOUT');
  assert.ok(performance.now() - t0 < 1000);
  await delay(50);
  assert.equal(gw.broker.status().endpoints[0]?.inflight, 0, 'the timed-out call gave its slot back');

  acc.setFault('none');
  assert.equal((await infer()).status, 200);
});
