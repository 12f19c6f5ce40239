/**
 * The live view behind the dashboard and `top`: the recent window's arithmetic, the percentiles of
 * its histograms, and the admin listener's /api/v1/live, /api/v1/events and page assets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import type { BrokerStatus } from '../../src/broker/broker.ts';
import type { Gateway } from '../../src/compose/gateway.ts';
import { newRecord, type RequestRecord } from '../../src/core/events.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { newCounts, percentiles, record } from '../../src/observability/histogram.ts';
import type { LiveView } from '../../src/observability/live-view.ts';
import { buildView } from '../../src/observability/view.ts';
import { HISTORY_SECONDS, RecentWindow } from '../../src/observability/window.ts';
import { accelerator, gateway, INFER_BODY, keyFor, pool, send, snapshotFor } from '../helpers/harness.ts';

describe('log histogram', () => {
  it('gives percentiles within a bucket (±12%) at any scale', () => {
    for (const scale of [0.01, 1, 100]) {
      const c = newCounts();
      for (let i = 1; i <= 1000; i++) record(c, i * scale);
      const p = percentiles(c)!;
      assert.equal(p.count, 1000);
      for (const [got, want] of [[p.p50, 500 * scale], [p.p95, 950 * scale], [p.p99, 990 * scale]] as const) {
        assert.ok(Math.abs(got / want - 1) <= 0.12, `scale ${scale}: ${got} vs ${want}`);
      }
    }
    assert.equal(percentiles(newCounts()), undefined);
  });
});

describe('recent window', () => {
  const snapshot = snapshotFor({ endpoints: [{ url: 'http://127.0.0.1:9', slots: 2 }], groups: [{ name: 'a', weight: 3 }, { name: 'b' }] });
  const status = (acc: Record<string, number>, queued = 0): BrokerStatus => ({
    version: 1,
    hash: snapshot.hash,
    fairness: 'compute',
    groups: ['a', 'b'].map((name) => ({ name, priority: 0, weight: name === 'a' ? 3 : 1, queued, inflight: 0, maxLength: 100, dispatched: 0, drainPerSecond: 0, acceleratorMs: acc[name] ?? 0, configuredShare: name === 'a' ? 0.75 : 0.25 })),
    endpoints: [{ backend: 'accel', url: 'http://127.0.0.1:9', slots: 2, inflight: 1, healthy: true, served: 0, failures: 0, latencyMs: 3 }],
  });
  const rec = (group: string, outcome: RequestRecord['outcome'], queueMs?: number): RequestRecord => {
    const r = newRecord('x', 'http', performance.now());
    Object.assign(r, { group, app: `app-${group}`, model: 'demo', outcome, queueMs, backendMs: outcome === 'OK' ? 5 : undefined });
    return r;
  };

  it('turns a second of records and a broker sample into rates, shares and percentiles', () => {
    const w = new RecentWindow();
    const now = performance.now();
    for (let i = 0; i < 30; i++) w.observe(rec('a', 'OK', 10), now);
    for (let i = 0; i < 10; i++) w.observe(rec('b', 'OK', 40), now);
    w.observe(rec('b', 'MG_QUEUE_FULL'), now);
    w.observe(rec('b', 'MG_QUEUE_TIMEOUT', 2000), now);
    w.tick(status({ a: 300, b: 100 }, 4));
    let v = buildView(w, status({ a: 300, b: 100 }), snapshot, Date.now());
    const a = v.groups.find((g) => g.name === 'a')!;
    const b = v.groups.find((g) => g.name === 'b')!;
    assert.equal(a.perSecond, 30);
    assert.equal(b.perSecond, 10);
    assert.equal(b.rejectedPerSecond, 2);
    assert.equal(a.usedShare, 0.75);
    assert.equal(b.usedShare, 0.25);
    assert.ok(Math.abs(a.wait!.p50 / 10 - 1) <= 0.12);
    assert.equal(b.wait!.count, 11);
    assert.deepEqual(a.history.queued, [4]);
    assert.deepEqual(v.endpoints[0]!.busy, [1]);
    assert.deepEqual(v.totals, { perSecond: 42, requests: 42, rejected: 2 });
    assert.deepEqual(v.apps.find((x) => x.name === 'app-b')!.rejections, { MG_QUEUE_FULL: 1, MG_QUEUE_TIMEOUT: 1 });
    assert.deepEqual(v.errors.map((e) => e.outcome), ['MG_QUEUE_TIMEOUT', 'MG_QUEUE_FULL']);
    assert.equal(v.models.find((m) => m.name === 'demo')!.backendTime!.count, 40);

    // An idle second: rates average over the window, the share history has a gap.
    w.tick(status({ a: 300, b: 100 }));
    v = buildView(w, status({ a: 300, b: 100 }), snapshot, Date.now());
    assert.equal(v.groups.find((g) => g.name === 'a')!.perSecond, 15);
    assert.deepEqual(v.groups.find((g) => g.name === 'a')!.history.share, [0.75, null]);
    assert.equal(v.totals.requests, 42);
  });

  it('keeps a minute of history and a ten-second window', () => {
    const w = new RecentWindow();
    for (let s = 0; s < 75; s++) {
      for (let i = 0; i < s; i++) w.observe(rec('a', 'OK', 1), performance.now());
      w.tick(status({ a: s * 100 }));
    }
    const v = buildView(w, status({}), snapshot, Date.now());
    const a = v.groups.find((g) => g.name === 'a')!;
    assert.equal(a.history.perSecond.length, HISTORY_SECONDS);
    assert.equal(a.history.perSecond.at(-1), 74);
    assert.equal(a.perSecond, (65 + 74) / 2); // mean of seconds 65..74
  });
});

describe('admin listener: live view, events and dashboard assets', () => {
  let acc: ModelServer;
  let gw: Gateway;
  let p: Pool;

  before(async () => {
    acc = await accelerator({ slots: 2, serviceTime: 1 });
    gw = await gateway({ endpoints: [{ url: acc.url, slots: 2 }], groups: [{ name: 'gold', weight: 3 }, { name: 'bronze' }] });
    p = pool(gw.httpUrl);
  });

  after(async () => {
    await p.close();
    await gw.close();
    await acc.close();
  });

  it('streams a view at once and then about once a second, with exact counts', async () => {
    const res = await fetch(`${gw.adminUrl}/api/v1/events`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    const next = async (): Promise<{ view: LiveView; at: number }> => {
      for (;;) {
        const m = /data: (.*)\n\n/.exec(buffer);
        if (m) {
          buffer = buffer.slice(m.index + m[0].length);
          return { view: JSON.parse(m[1]!) as LiveView, at: performance.now() };
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('event stream ended');
        buffer += value;
      }
    };
    const first = await next();
    assert.deepEqual(first.view.groups.map((g) => g.name).sort(), ['bronze', 'default', 'gold']);
    for (let i = 0; i < 12; i++) assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('gold'), body: INFER_BODY })).status, 200);
    const seen: { view: LiveView; at: number }[] = [];
    while (seen.length < 3) seen.push(await next());
    const last = seen.at(-1)!.view;
    assert.equal(last.totals.requests, 12);
    assert.equal(last.apps.find((a) => a.name === 'app-gold')!.requests, 12);
    assert.ok(last.groups.find((g) => g.name === 'gold')!.dispatched === 12);
    const gaps = seen.slice(1).map((s, i) => s.at - seen[i]!.at);
    assert.ok(gaps.every((g) => g > 300 && g < 3000), `gaps between views: ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);
    await reader.cancel();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(gw.live.watching, 0, 'a closed stream stops being fed');
  });

  it('answers the live view as JSON', async () => {
    const v = (await (await fetch(`${gw.adminUrl}/api/v1/live`)).json()) as LiveView;
    assert.equal(v.config.version, 1);
    assert.equal(v.endpoints[0]?.url, acc.url);
    assert.equal(v.windowSeconds, 10);
  });

  it('serves the page, its script and stylesheet from the project, with no outside URL', async () => {
    const page = await fetch(`${gw.adminUrl}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const html = await page.text();
    const js = await (await fetch(`${gw.adminUrl}/dashboard.js`)).text();
    const css = await (await fetch(`${gw.adminUrl}/dashboard.css`)).text();
    assert.match(html, /<script type="module" src="\/dashboard.js">/);
    assert.match(js, /api\/v1\/events/);
    assert.doesNotMatch(js, /^import .* from ['"][^.]/m, 'bundled: no bare imports left for the browser');
    // The page carries the current view as data (its first paint); the data names backend URLs, the markup loads none.
    const markup = html.replace(/<script type="application\/json" id="initial-view">[^<]*<\/script>/, '');
    assert.notEqual(markup, html, 'the page carries the current view');
    for (const [name, text] of [['html', markup], ['js', js], ['css', css]] as const) assert.doesNotMatch(text, /https?:\/\//, `${name} refers to no outside URL`);
    assert.equal((await fetch(`${gw.adminUrl}/dashboard.css`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${gw.adminUrl}/nope`)).status, 404);
  });
});
