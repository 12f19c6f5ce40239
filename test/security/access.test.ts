// Who may call what, from where, how often: identity, grants, operations, firewall, limits and the
// audit log, on real servers. The backend must see none of the refused requests.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accelerator, delay, gateway, keyFor, pool, send, snapshotFor, INFER_BODY, type SetupDef } from '../helpers/harness.ts';

const API = 'modelguard.io/v1alpha1';
const INFER = '/v2/models/demo/infer';
const sha = (k: string): string => createHash('sha256').update(k).digest('hex');
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup(extra: SetupDef['extra'], gatewaySpec: Record<string, unknown> = {}, serviceTime = 1): Promise<{ def: SetupDef; gw: Awaited<ReturnType<typeof gateway>>; acc: Awaited<ReturnType<typeof accelerator>>; p: ReturnType<typeof pool> }> {
  const acc = await accelerator({ slots: 4, serviceTime, models: ['demo', 'secret'] });
  closers.push(() => acc.close());
  const def: SetupDef = {
    endpoints: [{ url: acc.url, slots: 4 }],
    groups: [{ name: 'a' }, { name: 'b', priority: 5 }],
    extra: [{ apiVersion: API, kind: 'Model', metadata: { name: 'secret' }, spec: { backend: 'accel', visibility: 'private' } }, ...(extra ?? [])],
    gateway: gatewaySpec,
  };
  const gw = await gateway(def);
  const p = pool(gw.httpUrl, 64);
  closers.push(() => gw.close(), () => p.close());
  return { def, gw, acc, p };
}

test('no key, empty key, whitespace key, unknown key, revoked key → 401; another app\'s key for a private model → 403; none reaches the backend', { timeout: 30_000 }, async () => {
  const { def, gw, acc, p } = await setup([
    { apiVersion: API, kind: 'App', metadata: { name: 'owner' }, spec: { serviceGroup: 'a', models: ['secret'], apiKeys: [{ sha256: sha('key-owner') }, { sha256: sha('key-old') }] } },
  ]);
  const refused: [string, Record<string, string>, string, number, string][] = [
    ['no key', {}, INFER, 401, 'MG_UNAUTHENTICATED'],
    ['empty bearer', { authorization: 'Bearer ' }, INFER, 401, 'MG_UNAUTHENTICATED'],
    ['empty x-api-key', { 'x-api-key': '' }, INFER, 401, 'MG_UNAUTHENTICATED'],
    ['whitespace key', { 'x-api-key': '   ' }, INFER, 401, 'MG_UNAUTHENTICATED'],
    ['basic auth', { authorization: 'Basic a2V5LW93bmVyOg==' }, INFER, 401, 'MG_UNAUTHENTICATED'],
    ['unknown key', { authorization: 'Bearer key-nobody' }, INFER, 401, 'MG_UNAUTHENTICATED'],
    ['key of another app', { authorization: `Bearer ${keyFor('a')}` }, '/v2/models/secret/infer', 403, 'MG_FORBIDDEN'],
  ];
  for (const [what, headers, path, status, code] of refused) {
    const r = await send(p, path, { body: INFER_BODY, headers: { ...headers, 'x-request-id': `refused-${what.replace(/\W/g, '-')}` } });
    assert.equal(r.status, status, what);
    assert.equal(r.code, code, what);
  }
  // Rotation: both keys work; after a reload without the old one, it is revoked at once.
  assert.equal((await send(p, '/v2/models/secret/infer', { key: 'key-old', body: INFER_BODY })).status, 200);
  gw.reload(snapshotFor({ ...def, extra: [def.extra![0]!, { apiVersion: API, kind: 'App', metadata: { name: 'owner' }, spec: { serviceGroup: 'a', models: ['secret'], apiKeys: [{ sha256: sha('key-owner') }] } }] }, 2));
  const revoked = await send(p, '/v2/models/secret/infer', { key: 'key-old', body: INFER_BODY, headers: { 'x-request-id': 'refused-revoked' } });
  assert.equal(revoked.status, 401);
  assert.equal((await send(p, '/v2/models/secret/infer', { key: 'key-owner', body: INFER_BODY })).status, 200);
  const leaked = [...acc.receivedIds()].filter((id) => id.startsWith('refused-'));
  assert.deepEqual(leaked, [], 'the backend saw none of the refused requests');
});

test('a client-supplied X-Service-Group never changes the group of an authenticated request', { timeout: 30_000 }, async () => {
  const { gw, p } = await setup([]);
  for (let i = 0; i < 5; i++) {
    const r = await send(p, INFER, { key: keyFor('a'), body: INFER_BODY, headers: { 'X-Service-Group': i % 2 ? 'b' : 'default' } });
    assert.equal(r.status, 200);
  }
  const groups = Object.fromEntries(gw.broker.status().groups.map((g) => [g.name, g.dispatched]));
  assert.deepEqual(groups, { default: 0, a: 5, b: 0 });
});

test('operations: backend admin paths need the admin grant', { timeout: 30_000 }, async () => {
  const { p } = await setup([{ apiVersion: API, kind: 'App', metadata: { name: 'ops' }, spec: { serviceGroup: 'a', operations: ['infer', 'metadata', 'admin'], apiKeys: [{ sha256: sha('key-ops') }] } }]);
  for (const path of ['/models/demo/v2/repository/index', '/models/demo/v2/repository/models/demo/unload', '/models/demo/V2/%72epository/index', '/models/demo/v2/models/demo/load']) {
    const r = await send(p, path, { key: keyFor('a'), body: '{}' });
    assert.equal(r.status, 403, path);
    assert.equal(r.code, 'MG_FORBIDDEN');
    assert.notEqual((await send(p, path, { key: 'key-ops', body: '{}' })).status, 403, `${path} with the admin grant`);
  }
  assert.equal((await send(p, '/models/demo/v2/health/ready', { key: keyFor('a') })).status, 200, 'other pass-through is inference');
});

test('source firewall: the Gateway\'s and the App\'s CIDRs, IPv4 and IPv6', { timeout: 30_000 }, async () => {
  const denied = await setup([], { sources: { deny: ['127.0.0.0/8'] } });
  const r = await send(denied.p, INFER, { key: keyFor('a'), body: INFER_BODY });
  assert.equal(r.status, 403);
  assert.equal(r.code, 'MG_FORBIDDEN');
  const { p } = await setup([
    { apiVersion: API, kind: 'App', metadata: { name: 'lan' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha('key-lan') }], sources: { allow: ['10.0.0.0/8', 'fd00::/8'] } } },
    { apiVersion: API, kind: 'App', metadata: { name: 'local' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha('key-local') }], sources: { allow: ['127.0.0.1', '::1'] } } },
  ], { sources: { allow: ['127.0.0.0/8', '::1/128'] } });
  assert.equal((await send(p, INFER, { key: 'key-lan', body: INFER_BODY })).status, 403);
  assert.equal((await send(p, INFER, { key: 'key-local', body: INFER_BODY })).status, 200);
});

test('rate limits hold within 5% over 10 s, and Retry-After is the true time to the next token', { timeout: 40_000 }, async () => {
  const { p } = await setup([{ apiVersion: API, kind: 'App', metadata: { name: 'lim' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha('key-lim') }], rateLimit: { requestsPerSecond: 20, burst: 5 } } }]);
  let ok = 0;
  let limited = 0;
  let running = true;
  const stop = delay(10_000).then(() => (running = false));
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (running) {
        const r = await send(p, INFER, { key: 'key-lim', body: INFER_BODY });
        if (r.status === 200) ok++;
        else {
          assert.equal(r.code, 'MG_RATE_LIMITED');
          limited++;
          await delay(2);
        }
      }
    }),
  );
  await stop;
  const seconds = (performance.now() - t0) / 1000;
  const expected = 5 + 20 * seconds;
  assert.ok(Math.abs(ok - expected) / expected <= 0.05, `served ${ok}, expected ${expected.toFixed(0)} in ${seconds.toFixed(1)} s`);
  assert.ok(limited > 0);
  // Drain the bucket, then wait exactly the advertised time: the next request passes.
  let res = await p.request({ method: 'POST', path: INFER, headers: { authorization: 'Bearer key-lim' }, body: INFER_BODY });
  await res.body.dump();
  while (res.statusCode === 200) {
    res = await p.request({ method: 'POST', path: INFER, headers: { authorization: 'Bearer key-lim' }, body: INFER_BODY });
    await res.body.dump();
  }
  const waitMs = Number(res.headers['x-modelguard-retry-after-ms']);
  assert.ok(waitMs > 0 && waitMs <= 50, `at 20/s the next token is at most 50 ms away: ${waitMs}`);
  await delay(waitMs + 5);
  assert.equal((await send(p, INFER, { key: 'key-lim', body: INFER_BODY })).status, 200);
});

test('in-flight cap holds under concurrency; per-model limits and hourly quotas refuse with a Retry-After', { timeout: 30_000 }, async () => {
  const { gw, p } = await setup(
    [
      { apiVersion: API, kind: 'App', metadata: { name: 'capped' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha('key-capped') }], maxInflight: 3 } },
      { apiVersion: API, kind: 'App', metadata: { name: 'permodel' }, spec: { serviceGroup: 'a', models: ['secret'], apiKeys: [{ sha256: sha('key-pm') }], modelRateLimits: [{ model: 'secret', requestsPerSecond: 1, burst: 2 }] } },
      { apiVersion: API, kind: 'App', metadata: { name: 'quota' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha('key-quota') }], quota: { requestsPerHour: 5 } } },
    ],
    {},
    60,
  );
  let peak = 0;
  const watch = setInterval(() => (peak = Math.max(peak, gw.pipeline.inflight('capped'))), 2);
  const answers = await Promise.all(Array.from({ length: 20 }, () => send(p, INFER, { key: 'key-capped', body: INFER_BODY })));
  clearInterval(watch);
  const served = answers.filter((a) => a.status === 200).length;
  assert.equal(served, 3, 'exactly the cap was admitted');
  assert.ok(answers.filter((a) => a.status === 429).every((a) => a.code === 'MG_RATE_LIMITED' && a.retryAfter !== undefined));
  assert.ok(peak <= 3, `peak in flight ${peak}`);
  assert.equal(gw.pipeline.inflight('capped'), 0, 'the count returns to zero');

  const pm = [];
  for (let i = 0; i < 3; i++) pm.push((await send(p, '/v2/models/secret/infer', { key: 'key-pm', body: INFER_BODY })).status);
  assert.deepEqual(pm, [200, 200, 429]);
  assert.equal((await send(p, INFER, { key: 'key-pm', body: INFER_BODY })).status, 200, 'other models are not limited');

  const q = [];
  for (let i = 0; i < 6; i++) q.push(await send(p, INFER, { key: 'key-quota', body: INFER_BODY }));
  assert.deepEqual(q.map((a) => a.status), [200, 200, 200, 200, 200, 429]);
  const untilHour = 3600 - Math.floor((Date.now() % 3_600_000) / 1000);
  assert.ok(Math.abs(Number(q[5]!.retryAfter) - untilHour) <= 2, `Retry-After ${q[5]!.retryAfter}s ≈ ${untilHour}s to the next hour`);
});

test('audit: one JSON line per decision with app, group, model, source and reason; no keys', { timeout: 30_000 }, async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'mg-audit-')), 'audit.log');
  const { p } = await setup([], { audit: { destination: file, maxSize: '2Ki', maxFiles: 2 } });
  const sent: [string | undefined, number][] = [
    [keyFor('a'), 200],
    ['not-a-key-123456', 401],
    [keyFor('b'), 200],
  ];
  for (const [key, status] of sent) assert.equal((await send(p, INFER, { ...(key ? { key } : {}), body: INFER_BODY })).status, status);
  assert.equal((await send(p, '/v2/models/secret/infer', { key: keyFor('a'), body: INFER_BODY })).status, 403);
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 4);
  assert.deepEqual(lines.map((l) => [l['decision'], l['reason'], l['app'], l['group']]), [
    ['allow', 'OK', 'app-a', 'a'],
    ['deny', 'MG_UNAUTHENTICATED', null, null],
    ['allow', 'OK', 'app-b', 'b'],
    ['deny', 'MG_FORBIDDEN', 'app-a', 'a'],
  ]);
  assert.match(String(lines[0]!['source']), /127\.0\.0\.1/);
  const text = readFileSync(file, 'utf8');
  for (const secret of [keyFor('a'), keyFor('b'), 'not-a-key-123456']) assert.ok(!text.includes(secret), 'no key in the audit log');
  // Rotation by size: 2 KiB per file, two files kept.
  for (let i = 0; i < 40; i++) await send(p, INFER, { key: keyFor('a'), body: INFER_BODY });
  const { existsSync, statSync } = await import('node:fs');
  assert.ok(existsSync(`${file}.1`) && existsSync(`${file}.2`) && !existsSync(`${file}.3`));
  assert.ok(statSync(file).size <= 2048);
});

test('one keep-alive connection, many keys: each request is judged by its own key, and a reload revokes a remembered one', async () => {
  const { def, gw } = await setup([]);
  // One connection carries every request (a reverse proxy in front pools its upstream connections like this).
  const one = pool(gw.httpUrl, 1);
  closers.push(() => one.close());
  const a = keyFor('a');
  const sameLength = `${a.slice(0, -1)}x`;
  assert.equal((await send(one, INFER, { key: a, body: INFER_BODY })).status, 200);
  const wrong = await send(one, INFER, { key: sameLength, body: INFER_BODY });
  assert.equal(wrong.status, 401, 'a key differing in its last character from the one remembered');
  assert.equal(wrong.code, 'MG_UNAUTHENTICATED');
  const b = await send(one, '/v2/models/secret/infer', { key: keyFor('b'), body: INFER_BODY });
  assert.equal(b.status, 403, 'the other app on the same connection gets its own grants, not the remembered app\'s');
  assert.equal((await send(one, INFER, { key: a, body: INFER_BODY })).status, 200);
  // A reload that drops app-a: the connection's remembered key no longer lets it in.
  gw.reload(snapshotFor({ ...def, groups: [{ name: 'b', priority: 5 }] }, 2));
  const revoked = await send(one, INFER, { key: a, body: INFER_BODY });
  assert.equal(revoked.status, 401);
  assert.equal(revoked.code, 'MG_UNAUTHENTICATED');
});
