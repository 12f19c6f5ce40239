// Prometheus remote write end to end: a gateway pushes its registry to a receiver on loopback,
// which decodes with independent code (snappyjs, protobufjs). Failures are made by the receiver
// (500, 400, 429, no answer, no listener); time is measured in intervals, never slept.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { Registry } from '../../src/core/prom.ts';
import type { RemoteWriteSnapshot } from '../../src/core/snapshot.ts';
import { RemoteWriter } from '../../src/observability/remote-write.ts';
import { brokerSnapshot } from '../../src/config/partition.ts';
import { startBroker } from '../../src/compose/roles.ts';
import { accelerator, gateway, INFER_BODY, keyFor, pool, resourcesFor, send, snapshotFor, waitFor, type SetupDef } from '../helpers/harness.ts';
import { parseProm } from './helpers.ts';
import { receiver, valueOf, type Push, type Receiver } from './remote-write-receiver.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function recv(answer?: (n: number) => number | 'hang'): Promise<Receiver> {
  const r = await receiver(answer);
  closers.push(() => r.close());
  return r;
}

async function model(): Promise<string> {
  const m = await accelerator({ slots: 2, serviceTime: 1 });
  closers.push(() => m.close());
  return m.url;
}

function setup(url: string, remoteWrite: Record<string, unknown>): SetupDef {
  return { endpoints: [{ url, slots: 2 }], groups: [{ name: 'a' }, { name: 'b' }], gateway: { metrics: { remoteWrite } } };
}

/** A writer on its own registry, with its log lines collected. */
function writer(settings: Partial<RemoteWriteSnapshot> & { url: string }): { w: RemoteWriter; registry: Registry; logs: string[] } {
  const registry = new Registry();
  const logs: string[] = [];
  const full: RemoteWriteSnapshot = { intervalMs: 50, timeoutMs: 2000, maxPendingBatches: 10, externalLabels: {}, credentials: undefined, tls: undefined, ...settings };
  const w = new RemoteWriter(registry, full, { log: (l) => logs.push(l) });
  closers.push(() => w.close());
  return { w, registry, logs };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const s = parseProm(await registry.metrics()).find((x) => x.name === name && Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return s?.value ?? 0;
}

/** Polls an async condition (every 5 ms) until it holds, failing after `timeoutMs`. */
async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const stamps = (r: Receiver): number[] => r.accepted().map((p) => p.timestamp);
const increasing = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

describe('remote write from a gateway', () => {
  it('pushes every series with the exact counts, external labels, the secret header, timestamps and histogram buckets', async () => {
    const r = await recv();
    process.env['MG_RW_TEST_SITE'] = 'plant-3';
    process.env['MG_RW_TEST_TOKEN'] = 's3cret-token-rw';
    const t0 = Date.now();
    const gw = await gateway(
      setup(await model(), {
        url: r.url,
        interval: '100ms',
        externalLabels: { node: 'edge-7', site: '${MG_RW_TEST_SITE}' },
        credentials: { env: 'MG_RW_TEST_TOKEN', header: 'X-Scope-OrgID', scheme: '' },
      }),
    );
    closers.push(() => gw.close());
    await waitFor(() => gw.pipeline.ready(), 'the accelerator to be healthy');
    const p = pool(gw.httpUrl);
    closers.push(() => p.close());
    for (let i = 0; i < 7; i++) assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('b'), body: INFER_BODY })).status, 200);
    assert.equal((await send(p, '/v2/models/demo/infer', { key: 'wrong', body: INFER_BODY })).status, 401);

    const complete = (x: Push): boolean =>
      valueOf(x.series, 'broker_received_request_total', { group: 'a' }) === 7 &&
      valueOf(x.series, 'broker_received_request_total', { group: 'b' }) === 3 &&
      valueOf(x.series, 'modelguard_rejections_total', { group: 'none', reason: 'MG_UNAUTHENTICATED' }) === 1;
    await waitFor(() => r.accepted().some(complete), 'a batch with every request counted');
    const batch = r.accepted().find(complete)!;

    assert.equal(batch.headers['content-encoding'], 'snappy');
    assert.equal(batch.headers['content-type'], 'application/x-protobuf');
    assert.equal(batch.headers['x-prometheus-remote-write-version'], '0.1.0');
    assert.match(batch.headers['user-agent'] ?? '', /^modelguard\/\d+\.\d+\.\d+/);
    assert.equal(batch.headers['x-scope-orgid'], 's3cret-token-rw');

    assert.equal(valueOf(batch.series, 'broker_backend_handled_request_total', { group: 'a' }), 7);
    assert.equal(valueOf(batch.series, 'modelguard_requests_total', { group: 'a', app: 'app-a', outcome: 'OK' }), 7);
    for (const s of batch.series) {
      assert.deepEqual(
        { node: s.labels['node'], site: s.labels['site'], job: s.labels['job'], instance: s.labels['instance'] },
        { node: 'edge-7', site: 'plant-3', job: 'modelguard', instance: hostname() },
      );
      assert.deepEqual(s.order, [...s.order].sort(), 'labels sorted by name');
      assert.ok(s.labels['__name__']);
      assert.equal(s.samples.length, 1);
      assert.ok(s.samples[0]!.timestamp >= t0 && s.samples[0]!.timestamp <= Date.now(), 'a millisecond timestamp of this run');
    }
    // Histograms as classic series: cumulative buckets up to +Inf, which equals _count.
    const buckets = batch.series
      .filter((s) => s.labels['__name__'] === 'modelguard_request_duration_seconds_bucket' && s.labels['group'] === 'a')
      .map((s) => ({ le: s.labels['le']!, v: s.samples[0]!.value }));
    assert.equal(buckets.length, 17);
    assert.equal(buckets.at(-1)!.le, '+Inf');
    assert.ok(buckets.every((b, i) => i === 0 || b.v >= buckets[i - 1]!.v), 'cumulative');
    assert.equal(buckets.at(-1)!.v, 7);
    assert.equal(valueOf(batch.series, 'modelguard_request_duration_seconds_count', { group: 'a' }), 7);
    assert.ok((valueOf(batch.series, 'modelguard_request_duration_seconds_sum', { group: 'a' }) ?? 0) > 0);
    // Its own metrics travel with the rest, and count what was accepted.
    await waitFor(() => r.accepted().length >= 3, 'three batches');
    await until(async () => (await metric(gw.metrics.registry, 'modelguard_remote_write_sent_total')) >= 3, 'the writer to count them');
    assert.ok((await metric(gw.metrics.registry, 'modelguard_remote_write_last_success_timestamp_seconds')) * 1000 >= t0);
    assert.ok(increasing(stamps(r)), 'batches in time order');
  });

  it('swaps URL and interval on reload, and stops pushing when closed', async () => {
    const [first, second] = [await recv(), await recv()];
    const url = await model();
    const gw = await gateway(setup(url, { url: first.url, interval: '200ms', externalLabels: { node: 'reloaded' } }));
    let closed = false;
    closers.push(async () => void (closed || (await gw.close())));
    await waitFor(() => first.accepted().length >= 3, 'three pushes to the first URL');
    gw.reload(snapshotFor(setup(url, { url: second.url, interval: '50ms', externalLabels: { node: 'reloaded' } }), 2));
    await waitFor(() => second.accepted().length >= 1, 'a push to the second URL');
    const firstCount = first.pushes.length;
    await waitFor(() => second.accepted().length >= 8, 'eight pushes to the second URL');
    assert.equal(first.pushes.length, firstCount, 'nothing more to the first URL');
    const gap = (xs: number[]): number => {
      const d = xs.slice(1).map((x, i) => x - xs[i]!).sort((a, b) => a - b);
      return d[Math.floor(d.length / 2)]!;
    };
    assert.ok(gap(stamps(second).slice(1)) < 0.6 * gap(stamps(first)), `the new interval applies (${gap(stamps(second).slice(1))} vs ${gap(stamps(first))} ms)`);

    // Closed: another writer keeps pushing to the same receiver meanwhile, so time passes in intervals.
    await gw.close();
    closed = true;
    const fromGateway = (): number => second.pushes.filter((x) => x.series[0]?.labels['node'] === 'reloaded').length;
    const afterClose = fromGateway();
    writer({ url: second.url, externalLabels: { node: 'other' } });
    await waitFor(() => second.pushes.filter((x) => x.series[0]?.labels['node'] === 'other').length >= 8, 'eight pushes of the other writer');
    assert.equal(fromGateway(), afterClose, 'no push after close');
  });
});

describe('remote write from the other roles and over TLS', () => {
  it('pushes from a broker role too', async () => {
    const r = await recv();
    const full = snapshotFor(setup(await model(), { url: r.url, interval: '50ms', externalLabels: { node: 'node-1' } }));
    const broker = await startBroker(brokerSnapshot(full, 'node-1'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
    closers.push(() => broker.close());
    // Its own counters travel too: a later batch reports the earlier ones as sent.
    await waitFor(() => r.accepted().some((x) => (valueOf(x.series, 'modelguard_remote_write_sent_total') ?? 0) >= 1), 'pushes from the broker');
    assert.equal(valueOf(r.accepted().at(-1)!.series, 'modelguard_endpoint_slots', { node: 'node-1' }), 2);
  });

  it('verifies the endpoint with the configured CA, and fails as network without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-rw-tls-'));
    const p = (f: string): string => join(dir, f);
    const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=rw-test-ca');
    writeFileSync(p('san.ext'), 'subjectAltName=DNS:metrics.test\n');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=metrics.test');
    ssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('san.ext'));
    const r = await receiver(() => 204, { key: readFileSync(p('server.key')), cert: readFileSync(p('server.pem')) });
    closers.push(() => r.close());
    const tls = { ca: p('ca.pem'), cert: undefined, key: undefined, serverName: 'metrics.test', insecureSkipVerify: false };
    writer({ url: r.url, tls });
    await waitFor(() => r.accepted().length >= 2, 'pushes over TLS');
    const untrusted = writer({ url: r.url, tls: { ...tls, ca: undefined } });
    await until(async () => (await metric(untrusted.registry, 'modelguard_remote_write_failed_total', { reason: 'network' })) >= 1, 'a refused certificate');
    assert.match(untrusted.logs.join('\n'), /certificate/i);
  });
});

describe('remote write failures', () => {
  it('retries a 500 with backoff and delivers the same batches, oldest first, once the receiver recovers', async () => {
    const r = await recv((n) => (n < 4 ? 500 : 204));
    const { registry, logs } = writer({ url: r.url, intervalMs: 40, maxPendingBatches: 100 });
    await waitFor(() => r.accepted().length >= 3, 'accepted after the failures');
    const failedStamps = r.pushes.filter((p) => p.status === 500).map((p) => p.timestamp);
    assert.equal(failedStamps.length, 4);
    assert.equal(new Set(failedStamps).size, 1, 'every retry sends the first batch again');
    assert.equal(stamps(r)[0], failedStamps[0], 'the batch that failed is delivered first');
    assert.ok(increasing(stamps(r)), 'then the later ones, in order');
    assert.equal(await metric(registry, 'modelguard_remote_write_failed_total', { reason: 'server-error' }), 4);
    assert.equal(await metric(registry, 'modelguard_remote_write_dropped_total', { reason: 'queue-full' }), 0);
    assert.equal(logs.filter((l) => l.startsWith('push to')).length, 1, 'one line for the failure streak');
    assert.equal(logs.filter((l) => l.includes('accepts again')).length, 1, 'one line for the recovery');
  });

  it('does not retry a 400: the batch is dropped, the next one is sent, and it is logged once', async () => {
    const r = await recv((n) => (n < 4 ? 400 : 204));
    const { registry, logs } = writer({ url: r.url.replace('//', '//edge:p%40ss@'), intervalMs: 30 });
    await waitFor(() => r.accepted().length >= 2, 'accepted after the rejections');
    const rejected = r.pushes.filter((p) => p.status === 400).map((p) => p.timestamp);
    assert.equal(new Set(rejected).size, 4, 'each rejected batch sent once');
    assert.ok(increasing(r.pushes.map((p) => p.timestamp)), 'no batch sent twice');
    assert.equal(await metric(registry, 'modelguard_remote_write_failed_total', { reason: 'rejected' }), 4);
    assert.equal(await metric(registry, 'modelguard_remote_write_dropped_total', { reason: 'rejected' }), 4);
    assert.equal(r.pushes[0]!.headers['authorization'], `Basic ${Buffer.from('edge:p@ss').toString('base64')}`, 'user info in the URL is sent as Basic auth');
    const lines = logs.filter((l) => l.includes('rejected'));
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /HTTP 400 refused with 400: out of order sample/);
    assert.ok(!logs.join('\n').includes('p%40ss'), 'the password in the URL is not logged');
    assert.match(lines[0]!, /authorization: Basic <secret>/, 'nor its Basic form, when the receiver echoes it');
  });

  it('keeps at most maxPendingBatches while the endpoint is down, dropping the oldest, and counts why', async () => {
    // An endpoint that is down: every connection is cut at once. Held open for the whole test, so
    // the receiver started below cannot be given the same port (a freed port can come straight
    // back from the kernel, and pushes to the "dead" URL would then be delivered).
    const probe = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => probe.close(() => resolve())));
    const port = (probe.address() as AddressInfo).port;
    const { w, registry } = writer({ url: `http://127.0.0.1:${port}/api/v1/write`, intervalMs: 20, maxPendingBatches: 3 });
    await until(async () => (await metric(registry, 'modelguard_remote_write_dropped_total', { reason: 'queue-full' })) >= 4, 'four batches dropped');
    assert.ok((await metric(registry, 'modelguard_remote_write_failed_total', { reason: 'network' })) >= 1, 'a refused connection counts as network');
    assert.equal(await metric(registry, 'modelguard_remote_write_pending_batches'), 3);
    // A receiver appears (at another URL, given by a reload): the three kept batches arrive first, in order.
    const r = await recv();
    w.configure({ url: r.url, intervalMs: 1000, timeoutMs: 2000, maxPendingBatches: 3, externalLabels: {}, credentials: undefined, tls: undefined });
    await w.tick();
    await waitFor(() => r.accepted().length >= 4, 'the kept batches and a new one');
    assert.ok(increasing(stamps(r)));
    await until(async () => (await metric(registry, 'modelguard_remote_write_pending_batches')) === 0, 'nothing left to send');
  });

  it('counts a push without an answer as a timeout, and close does not wait for it', async () => {
    const r = await recv((n) => (n === 0 ? 'hang' : 204));
    const { registry } = writer({ url: r.url, intervalMs: 40, timeoutMs: 150 });
    await waitFor(() => r.accepted().length >= 1, 'accepted after the timeout');
    assert.equal(await metric(registry, 'modelguard_remote_write_failed_total', { reason: 'timeout' }), 1);
    assert.equal(stamps(r)[0], r.pushes[0]!.timestamp, 'the batch that timed out is delivered');

    const stuck = await recv(() => 'hang');
    const { w } = writer({ url: stuck.url, intervalMs: 20, timeoutMs: 60_000 });
    await waitFor(() => stuck.pushes.length >= 1, 'a push in flight');
    const t = performance.now();
    await w.close();
    assert.ok(performance.now() - t < 2000, 'close aborts the push in flight');
  });

  it('retries a 429, and treats an unreadable secret file as a setup failure that heals when the file appears', async () => {
    const r = await recv((n) => (n === 0 ? 429 : 204));
    const file = join(mkdtempSync(join(tmpdir(), 'mg-rw-')), 'token');
    const { registry, logs } = writer({ url: r.url, intervalMs: 30, credentials: { env: undefined, file, header: 'authorization', scheme: 'Bearer' } });
    await until(async () => (await metric(registry, 'modelguard_remote_write_failed_total', { reason: 'setup' })) >= 1, 'a setup failure');
    assert.equal(r.pushes.length, 0, 'nothing sent without the secret');
    assert.match(logs.join('\n'), /setup: ENOENT/);
    writeFileSync(file, 'file-secret-42\n');
    await waitFor(() => r.accepted().length >= 1, 'accepted once the file exists', 10_000);
    assert.equal(r.pushes[0]!.status, 429);
    assert.equal(r.accepted()[0]!.timestamp, r.pushes[0]!.timestamp, 'the throttled batch is retried');
    assert.equal(r.accepted()[0]!.headers['authorization'], 'Bearer file-secret-42');
    assert.equal(await metric(registry, 'modelguard_remote_write_failed_total', { reason: 'throttled' }), 1);
    assert.ok(!logs.join('\n').includes('file-secret-42'));
  });
});

describe('remote write configuration', () => {
  it('compiles with its defaults, and is absent when not configured', () => {
    const snap = snapshotFor(setup('http://127.0.0.1:9', { url: 'https://mimir.example/api/v1/push', externalLabels: { node: 'a' } }));
    assert.deepEqual(snap.gateway.metrics?.remoteWrite, {
      url: 'https://mimir.example/api/v1/push',
      intervalMs: 15_000,
      timeoutMs: 10_000,
      maxPendingBatches: 10,
      externalLabels: { node: 'a' },
      credentials: undefined,
      tls: undefined,
    });
    const plain = snapshotFor({ endpoints: [{ url: 'http://127.0.0.1:9', slots: 1 }], groups: [{ name: 'a' }] });
    assert.equal(plain.gateway.metrics, undefined, 'so the hash of a configuration without it stays as it was');
  });

  it('rejects bad values with file, line and a hint', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mg-rw-')), 'gateway.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: modelguard.io/v1alpha1',
        'kind: Gateway',
        'metadata: { name: default }',
        'spec:',
        '  metrics:',
        '    remoteWrite:',
        '      url: ftp://example/write',
        '      interval: 15',
        '      externalLabels: { __bad: x }',
        '      credentials: { env: TOKEN, file: /run/token }',
        '',
      ].join('\n'),
    );
    const err = await loadConfig(file).then(
      () => assert.fail('expected a ConfigError'),
      (e: unknown) => e as ConfigError,
    );
    assert.ok(err instanceof ConfigError);
    const at = (text: string): { line: number | undefined; hint: string | undefined } => {
      const i = err.issues.find((x) => x.message.includes(text));
      assert.ok(i, `an issue about ${text} in:\n${err.format()}`);
      return { line: i.line, hint: i.hint };
    };
    assert.equal(at('url').line, 7);
    assert.equal(at('interval').line, 8);
    assert.equal(at('__bad').line, 9);
    assert.match(at('__bad').hint ?? '', /not starting with a digit or "__"/);
    assert.match(at('exactly one of env or file').hint ?? '', /never the secret itself/);
  });
});

describe('remote write validation warnings', () => {
  it('warns about a missing secret, a missing TLS file, tls without https, and a password in the URL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-rw-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: modelguard.io/v1alpha1',
        'kind: Gateway',
        'metadata: { name: default }',
        'spec:',
        '  metrics:',
        '    remoteWrite:',
        '      url: http://user:pw@mimir.example/api/v1/push',
        '      credentials: { env: MG_RW_TEST_UNSET_VARIABLE }',
        `      tls: { ca: ${join(dir, 'missing-ca.pem')} }`,
        '',
      ].join('\n'),
    );
    const loaded = await loadConfig(file);
    const lines = loaded.warnings.map((w) => `${w.line}: ${w.message}`);
    assert.deepEqual(
      lines.map((l) => l.replace(/ .*remoteWrite\./, ' ')),
      ['8: credentials.env: environment variable MG_RW_TEST_UNSET_VARIABLE is not set here', `9: tls.ca: file ${join(dir, 'missing-ca.pem')} does not exist here`, '9: tls: tls is set but the url is not https://', '7: url: the url holds a password, so the configuration does'],
    );
  });
});

describe('remote write from `modelguard up`', () => {
  it('pushes with the secret from a file, and no output of the process shows the secret', async () => {
    const r = await recv((n) => (n === 0 ? 400 : n < 3 ? 503 : 204));
    const dir = mkdtempSync(join(tmpdir(), 'mg-rw-'));
    const secretFile = join(dir, 'token');
    writeFileSync(secretFile, 'up-secret-7f3a\n');
    const def = setup(await model(), { url: r.url.replace('http://', 'http://user:pw-in-url@'), interval: '100ms', credentials: { file: secretFile } });
    const config = join(dir, 'config.yaml');
    writeFileSync(config, resourcesFor(def).map((x) => JSON.stringify(x)).join('\n---\n'));
    const child = spawn(process.execPath, ['bin/modelguard.js', 'up', '--config', config, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
      cwd: new URL('../../', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    closers.push(async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    });
    await waitFor(() => r.accepted().length >= 2, 'pushes from the process', 30_000);
    child.kill('SIGTERM');
    await exited;
    assert.equal(r.accepted()[0]!.headers['authorization'], 'Bearer up-secret-7f3a');
    assert.equal(r.accepted()[0]!.timestamp, r.pushes[1]!.timestamp, 'the batch refused with 503 is the first accepted');
    assert.ok(output.includes('remote write'), `it says what it does:\n${output}`);
    assert.equal(output.match(/rejected a batch/g)?.length, 1, 'the 400 is logged once');
    assert.ok(output.includes('authorization: Bearer <secret>'), 'the receiver echoed the header, and the log hides it');
    assert.ok(!output.includes('up-secret-7f3a'), 'the secret is never printed');
    assert.ok(!output.includes('pw-in-url'), 'nor a password in the URL');
  });
});
