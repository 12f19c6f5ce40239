// Configuration changes never drop queued or in-flight work; auth: none uses X-Service-Group.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { accelerator, gateway, keyFor, pool, send, snapshotFor, waitFor, INFER_BODY } from '../helpers/harness.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

test('a reload with new weights, a new group and a changed backend keeps every queued and in-flight request', { timeout: 30_000 }, async () => {
  const acc = await accelerator({ slots: 1, serviceTime: 50 });
  closers.push(() => acc.close());
  const def = { endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }] };
  const gw = await gateway(def);
  const p = pool(gw.httpUrl, 64);
  closers.push(() => gw.close(), () => p.close());

  const pending = Array.from({ length: 30 }, (_, i) => send(p, '/v2/models/demo/infer', { key: keyFor(i % 2 ? 'a' : 'b'), body: INFER_BODY }));
  const queued = (): number => gw.broker.status().groups.reduce((n, g) => n + g.queued, 0);
  await waitFor(() => queued() >= 25, 'work queued before the reload');
  gw.reload(snapshotFor({ ...def, endpoints: [{ url: acc.url, slots: 2 }], groups: [{ name: 'a', weight: 5 }, { name: 'b', weight: 1 }, { name: 'c' }] }, 2));
  assert.equal(gw.broker.status().version, 2);
  const answers = await Promise.all(pending);
  assert.deepEqual(answers.filter((a) => a.status !== 200).map((a) => a.code), []);
  // The new group and the new slot count are in force.
  assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('c'), body: INFER_BODY })).status, 200);
  assert.equal(gw.broker.status().endpoints[0]?.slots, 2);
});

test('a group removed by a reload finishes its queued work; its app can no longer authenticate', { timeout: 30_000 }, async () => {
  const acc = await accelerator({ slots: 1, serviceTime: 20 });
  closers.push(() => acc.close());
  const def = { endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }, { name: 'gone' }] };
  const gw = await gateway(def);
  const p = pool(gw.httpUrl, 32);
  closers.push(() => gw.close(), () => p.close());
  const pending = Array.from({ length: 8 }, () => send(p, '/v2/models/demo/infer', { key: keyFor('gone'), body: INFER_BODY }));
  const gone = (): number => {
    const g = gw.broker.status().groups.find((x) => x.name === 'gone');
    return (g?.queued ?? 0) + (g?.dispatched ?? 0);
  };
  await waitFor(() => gone() === 8, 'all eight admitted before the reload');
  gw.reload(snapshotFor({ ...def, groups: [{ name: 'a' }] }, 2));
  assert.ok((await Promise.all(pending)).every((a) => a.status === 200));
  assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('gone'), body: INFER_BODY })).status, 401);
});

test('auth: none — X-Service-Group picks the group, default otherwise; an unknown group is a 400', { timeout: 30_000 }, async () => {
  const acc = await accelerator({ slots: 1, serviceTime: 1 });
  closers.push(() => acc.close());
  const gw = await gateway({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'gold' }], gateway: { auth: 'none' } });
  const p = pool(gw.httpUrl);
  closers.push(() => gw.close(), () => p.close());
  assert.equal((await send(p, '/v2/models/demo/infer', { body: INFER_BODY, headers: { 'x-service-group': 'gold' } })).status, 200);
  assert.equal((await send(p, '/v2/models/demo/infer', { body: INFER_BODY })).status, 200);
  const groups = Object.fromEntries(gw.broker.status().groups.map((g) => [g.name, g.dispatched]));
  assert.equal(groups['gold'], 1);
  assert.equal(groups['default'], 1);
  const bad = await send(p, '/v2/models/demo/infer', { body: INFER_BODY, headers: { 'x-service-group': 'platinum' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.code, 'MG_BAD_REQUEST');
});
