/**
 * The text exposition format 0.0.4 as the Prometheus documentation specifies it ("Exposition
 * formats", text format details), not as our renderer happens to write it: the document's own
 * example rebuilt with our metric types must come out as the document prints it (escaping in label
 * values and HELP, `+Inf`, histogram buckets), and Prometheus's own checker, `promtool check
 * metrics`, must accept what we render and what a running gateway and controller serve, without
 * errors or lint findings.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../src/compose/gateway.ts';
import { Controller } from '../../src/controller/controller.ts';
import { createControllerServer } from '../../src/controller/server.ts';
import { FileSource } from '../../src/controller/source.ts';
import { CONTENT_TYPE, Counter, Gauge, Histogram, Registry } from '../../src/core/prom.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { closeServer, listen } from '../../src/net/listen.ts';
import { accelerator, gateway, INFER_BODY, keyFor, pool, send } from '../helpers/harness.ts';

/** Debian's `prometheus` package (scripts/test-deps.sh installs it). */
const PROMTOOL = '/usr/bin/promtool';

/** promtool's verdict on a scrape: exit status 0 and nothing printed (no parse error, no lint finding). */
function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

function assertAccepted(text: string, what: string): void {
  const { status, output } = promtool(text);
  assert.equal(output, '', `promtool on ${what}: ${output}`);
  assert.equal(status, 0, `promtool exit status on ${what}`);
}

/**
 * The document's example, rebuilt: its counter (without the optional timestamps), the escaping
 * example, the minimalistic line, the +Inf value and the histogram with its exact counts and sum.
 */
function documentExample(): Registry {
  const registry = new Registry();
  const requests = new Counter({ name: 'http_requests_total', help: 'The total number of HTTP requests.', labelNames: ['method', 'code'], registry });
  requests.inc({ method: 'post', code: '200' }, 1027);
  requests.inc({ method: 'post', code: '400' }, 3);
  const msdos = new Gauge({ name: 'msdos_file_access_time_seconds', help: 'Escaping in label values.', labelNames: ['path', 'error'], registry });
  msdos.set({ path: 'C:\\DIR\\FILE.TXT', error: 'Cannot find file:\n"FILE.TXT"' }, 1.458255915e9);
  new Gauge({ name: 'metric_without_timestamp_and_labels', help: 'Minimalistic line.', registry }).set(12.47);
  new Gauge({ name: 'something_weird', help: 'A weird metric.', labelNames: ['problem'], registry }).set({ problem: 'division by zero' }, Infinity);
  const h = new Histogram({ name: 'http_request_duration_seconds', help: 'A histogram of the request duration.', buckets: [0.05, 0.1, 0.2, 0.5, 1], registry });
  // Per bucket (not cumulative) 24054, 9390, 66948, 28997, 4599 and 10332 above 1; values that are
  // exact in binary, so the sum is exactly the document's 53423.
  const observe = (n: number, v: number): void => {
    for (let i = 0; i < n; i++) h.observe(v);
  };
  observe(24054, 0.03125);
  observe(9390, 0.0625);
  observe(66948, 0.125);
  observe(28997, 0.25);
  observe(4599, 1); // le is inclusive: 1 counts in le="1"
  observe(10331, 3);
  observe(1, 874.6875);
  return registry;
}

describe('text exposition format 0.0.4', () => {
  it('writes the documented example as the document prints it', async () => {
    // The document writes 1.458255915e9, which ParseFloat reads as the integer we write.
    const expected = [
      '# HELP http_requests_total The total number of HTTP requests.',
      '# TYPE http_requests_total counter',
      'http_requests_total{method="post",code="200"} 1027',
      'http_requests_total{method="post",code="400"} 3',
      '',
      '# HELP msdos_file_access_time_seconds Escaping in label values.',
      '# TYPE msdos_file_access_time_seconds gauge',
      'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1458255915',
      '',
      '# HELP metric_without_timestamp_and_labels Minimalistic line.',
      '# TYPE metric_without_timestamp_and_labels gauge',
      'metric_without_timestamp_and_labels 12.47',
      '',
      '# HELP something_weird A weird metric.',
      '# TYPE something_weird gauge',
      'something_weird{problem="division by zero"} +Inf',
      '',
      '# HELP http_request_duration_seconds A histogram of the request duration.',
      '# TYPE http_request_duration_seconds histogram',
      'http_request_duration_seconds_bucket{le="0.05"} 24054',
      'http_request_duration_seconds_bucket{le="0.1"} 33444',
      'http_request_duration_seconds_bucket{le="0.2"} 100392',
      'http_request_duration_seconds_bucket{le="0.5"} 129389',
      'http_request_duration_seconds_bucket{le="1"} 133988',
      'http_request_duration_seconds_bucket{le="+Inf"} 144320',
      'http_request_duration_seconds_sum 53423',
      'http_request_duration_seconds_count 144320',
      '',
    ].join('\n');
    const registry = documentExample();
    assert.equal(await registry.metrics(), expected);
    assert.equal(registry.contentType, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(CONTENT_TYPE, registry.contentType);
    assertAccepted(expected, 'the document example');
  });

  it('escapes HELP (backslash, line feed) and label values (backslash, double quote, line feed), and nothing else', async () => {
    const registry = new Registry();
    const g = new Gauge({ name: 'escapes', help: 'a \\ backslash,\na line feed and "quotes" that stay', labelNames: ['v'], registry });
    g.set({ v: 'back\\slash' }, 1);
    g.set({ v: 'dq"uote' }, 2);
    g.set({ v: 'line\nfeed' }, 3);
    g.set({ v: '\\n is not a line feed' }, 4);
    g.set({ v: 'edge-ü-東京 {a="b"}, tab\there' }, 5);
    g.set({ v: '' }, 6);
    const text = await registry.metrics();
    assert.equal(
      text,
      [
        '# HELP escapes a \\\\ backslash,\\na line feed and "quotes" that stay',
        '# TYPE escapes gauge',
        'escapes{v="back\\\\slash"} 1',
        'escapes{v="dq\\"uote"} 2',
        'escapes{v="line\\nfeed"} 3',
        'escapes{v="\\\\n is not a line feed"} 4',
        'escapes{v="edge-ü-東京 {a=\\"b\\"}, tab\there"} 5',
        'escapes{v=""} 6',
        '',
      ].join('\n'),
    );
    assertAccepted(text, 'escaped label values');
  });

  it('writes values as ParseFloat reads them: +Inf, -Inf, NaN, integers without exponent, shortest round-trip decimals', async () => {
    const registry = new Registry();
    const g = new Gauge({ name: 'values', help: 'special values', labelNames: ['case'], registry });
    const cases: [string, number, string][] = [
      ['pos_inf', Infinity, '+Inf'],
      ['neg_inf', -Infinity, '-Inf'],
      ['nan', NaN, 'NaN'],
      ['zero', 0, '0'],
      ['neg_zero', -0, '0'],
      ['negative', -2.5, '-2.5'],
      ['big_int', 2 ** 53, '9007199254740992'],
      ['timestamp', 1_790_000_000.123, '1790000000.123'],
      ['sum', 0.1 + 0.2, '0.30000000000000004'],
      ['tiny', 1e-7, '1e-7'],
    ];
    for (const [c, v] of cases) g.set({ case: c }, v);
    const text = await registry.metrics();
    for (const [c, v, written] of cases) {
      const line = `values{case="${c}"} ${written}`;
      assert.ok(text.includes(`\n${line}\n`), `${line} in\n${text}`);
      if (!Number.isNaN(v)) assert.equal(Number(written.replace('Inf', 'Infinity')), v === 0 ? 0 : v, `${written} reads back as ${v}`);
    }
    assertAccepted(text, 'special values');
  });

  it('writes a histogram with labels: cumulative buckets in increasing le, le last, +Inf equal to _count', async () => {
    const registry = new Registry();
    const h = new Histogram({ name: 'wait_seconds', help: 'h', labelNames: ['group', 'model'], buckets: [0.0005, 0.005, 1, 2.5], registry });
    // Binary-exact values (2^-12, 2^-11, 2^-8, …), so the sum is exact; 2.5 sits on a bound, which is inclusive.
    for (const v of [0.000244140625, 0.00048828125, 0.00390625, 0.75, 2.5, 99]) h.observe(v, 'gold', 'm');
    h.observe(0.001, 'bronze', 'm');
    const text = await registry.metrics();
    assert.equal(
      text,
      [
        '# HELP wait_seconds h',
        '# TYPE wait_seconds histogram',
        'wait_seconds_bucket{group="gold",model="m",le="0.0005"} 2',
        'wait_seconds_bucket{group="gold",model="m",le="0.005"} 3',
        'wait_seconds_bucket{group="gold",model="m",le="1"} 4',
        'wait_seconds_bucket{group="gold",model="m",le="2.5"} 5',
        'wait_seconds_bucket{group="gold",model="m",le="+Inf"} 6',
        'wait_seconds_sum{group="gold",model="m"} 102.254638671875',
        'wait_seconds_count{group="gold",model="m"} 6',
        'wait_seconds_bucket{group="bronze",model="m",le="0.0005"} 0',
        'wait_seconds_bucket{group="bronze",model="m",le="0.005"} 1',
        'wait_seconds_bucket{group="bronze",model="m",le="1"} 1',
        'wait_seconds_bucket{group="bronze",model="m",le="2.5"} 1',
        'wait_seconds_bucket{group="bronze",model="m",le="+Inf"} 1',
        'wait_seconds_sum{group="bronze",model="m"} 0.001',
        'wait_seconds_count{group="bronze",model="m"} 1',
        '',
      ].join('\n'),
    );
    assertAccepted(text, 'a labelled histogram');
  });

  it('shows a counter or gauge without labels at 0 from the start, one with labels only once set; a label left out is not written', async () => {
    const registry = new Registry();
    new Counter({ name: 'events_total', help: 'e', registry });
    const byClass = new Counter({ name: 'class_bytes_total', help: 'b', labelNames: ['interface', 'class', 'groups'], registry });
    const text = await registry.metrics();
    assert.equal(text, '# HELP events_total e\n# TYPE events_total counter\nevents_total 0\n\n# HELP class_bytes_total b\n# TYPE class_bytes_total counter\n');
    byClass.inc({ interface: 'eth0', class: 'inference' }, 10);
    byClass.inc({ interface: 'eth0', class: 'priority 10', groups: 'safety' }, 20);
    const after = await registry.metrics();
    assert.match(after, /^class_bytes_total\{interface="eth0",class="inference"\} 10$/m);
    assert.match(after, /^class_bytes_total\{interface="eth0",class="priority 10",groups="safety"\} 20$/m);
    assertAccepted(after, 'counters');
  });

  it('runs an asynchronous collect once for scrapes that overlap', async () => {
    const registry = new Registry();
    let runs = 0;
    new Counter({
      name: 'reads_total', help: 'r', labelNames: ['k'], registry,
      async collect() {
        runs++;
        this.reset();
        await new Promise((r) => setTimeout(r, 20));
        this.inc({ k: 'a' }, 5);
      },
    });
    const [a, b] = await Promise.all([registry.metrics(), registry.metrics()]);
    assert.equal(runs, 1);
    assert.match(a, /^reads_total\{k="a"\} 5$/m);
    assert.equal(a, b);
  });

  it('refuses what the format cannot express: bad names, a reserved or bucket label, a counter going down', () => {
    const registry = new Registry();
    assert.throws(() => new Counter({ name: '1st_total', help: 'h', registry }), /invalid metric name/);
    assert.throws(() => new Gauge({ name: 'g', help: 'h', labelNames: ['__name__'], registry }), /invalid label name/);
    assert.throws(() => new Gauge({ name: 'g2', help: 'h', labelNames: ['a-b'], registry }), /invalid label name/);
    assert.throws(() => new Histogram({ name: 'h', help: 'h', labelNames: ['le'], buckets: [1], registry }), /le/);
    assert.throws(() => new Histogram({ name: 'h2', help: 'h', buckets: [1, 1], registry }), /ascending/);
    const c = new Counter({ name: 'c_total', help: 'h', registry });
    assert.throws(() => c.inc(-1), RangeError);
    assert.throws(() => c.inc(NaN), RangeError);
    assert.throws(() => new Counter({ name: 'c_total', help: 'again', registry }), /already registered/);
  });
});

describe('promtool on live scrapes', () => {
  let acc: ModelServer;
  let gw: Gateway;

  before(async () => {
    acc = await accelerator({ slots: 2, serviceTime: 1 });
    gw = await gateway({ endpoints: [{ url: acc.url, slots: 2 }], groups: [{ name: 'gold' }, { name: 'bronze' }] });
  });

  after(async () => {
    await gw.close();
    await acc.close();
  });

  it("accepts a gateway's /metrics after answered and refused requests", async () => {
    const p = pool(gw.httpUrl);
    for (const group of ['gold', 'bronze']) for (let i = 0; i < 3; i++) await send(p, '/v2/models/demo/infer', { key: keyFor(group), body: INFER_BODY });
    await send(p, '/v2/models/demo/infer', { key: 'wrong', body: INFER_BODY });
    await send(p, '/v2/models/nope/infer', { key: keyFor('gold'), body: INFER_BODY });
    await p.close();
    const res = await fetch(`${gw.adminUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), CONTENT_TYPE);
    const text = await res.text();
    assert.match(text, /^modelguard_request_duration_seconds_bucket\{group="gold",model="demo",protocol="http",le="\+Inf"\} 3$/m);
    assert.match(text, /^modelguard_requests_total\{group="none",app="none",[^}]*outcome="MG_UNAUTHENTICATED"\} 1$/m);
    assertAccepted(text, 'a gateway scrape');
  });

  it("accepts a controller's /metrics", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-expo-'));
    const API = 'modelguard.io/v1alpha1';
    const docs = [
      { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: {} },
      { apiVersion: API, kind: 'Backend', metadata: { name: 'b' }, spec: { endpoints: [{ url: 'http://127.0.0.1:1' }] } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'm' }, spec: { backend: 'b' } },
      { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'g' }, spec: {} },
    ];
    writeFileSync(join(dir, 'r.yaml'), docs.map((d) => JSON.stringify(d)).join('\n---\n'));
    const controller = new Controller(new FileSource(dir), { heartbeatMs: 200, log: () => undefined });
    const server = createControllerServer(controller);
    try {
      await controller.start();
      const url = await listen(server, '127.0.0.1:0');
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), CONTENT_TYPE);
      const text = await res.text();
      assert.match(text, /^modelguard_controller_config_version 1$/m);
      assert.match(text, /^modelguard_controller_config_refusals_total 0$/m);
      assert.match(text, /^modelguard_controller_nodes\{role="broker",state="healthy"\} 0$/m);
      assertAccepted(text, 'a controller scrape');
    } finally {
      controller.close();
      await closeServer(server);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
