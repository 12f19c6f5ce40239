// MQTT ingress against a real mosquitto: MQTT 5 and MQTT 3.1.1 callers, replies matched to their
// requests, every failure answered on the reply topic with its DESIGN.md code.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestRecord } from '../../src/core/events.ts';
import type { Gateway } from '../../src/compose/gateway.ts';
import { startGateway } from '../../src/compose/gateway.ts';
import { accelerator, gateway, keyFor, pool, send, snapshotFor, INFER_BODY, waitFor } from '../helpers/harness.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { Caller, errorCode, startMosquitto, type Mosquitto } from './helpers.ts';

const API = 'modelguard.io/v1alpha1';
const INFER = JSON.parse(INFER_BODY) as Record<string, unknown>;
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

function recorder(gw: Gateway): RequestRecord[] {
  const seen: RequestRecord[] = [];
  gw.pipeline.events.subscribe((r) => seen.push(r));
  return seen;
}

describe('MQTT ingress on mosquitto', () => {
  let broker: Mosquitto;
  let gw: Gateway;
  let records: RequestRecord[];
  let v5: Caller;
  let v3: Caller;

  before(async () => {
    broker = await startMosquitto();
    closers.push(() => broker.close());
    const acc = await accelerator({ slots: 2, serviceTime: 2, models: ['demo', 'secret'] });
    closers.push(() => acc.close());
    gw = await startGateway(
      snapshotFor({
        endpoints: [{ url: acc.url, slots: 2 }],
        models: ['demo'],
        groups: [{ name: 'a' }],
        gateway: { mqtt: { url: broker.url } },
        extra: [
          { apiVersion: API, kind: 'Model', metadata: { name: 'secret' }, spec: { backend: 'accel', visibility: 'private' } },
          { apiVersion: API, kind: 'App', metadata: { name: 'insider' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha256Hex('key-insider') }], models: ['secret'] } },
        ],
      }),
      { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' },
    );
    closers.push(() => gw.close());
    records = recorder(gw);
    assert.equal(gw.mqttUrl, broker.url);
    v5 = await Caller.create(broker.url, 5);
    v3 = await Caller.create(broker.url, 4);
    closers.push(() => v5.close(), () => v3.close());
  });

  it('MQTT 5: reply on responseTopic with correlationData and servedBy; the body is the backend answer', async () => {
    const r = await v5.request('demo', INFER, { key: keyFor('a') });
    assert.equal(r.topic, v5.replyTopic);
    assert.deepEqual(r.userProperties?.['x-modelguard-served-by'], 'edge');
    assert.equal(r.doc['model_name'], 'demo');
    assert.ok(Array.isArray(r.doc['outputs']));
    assert.equal(r.doc['error'], undefined);
    await waitFor(() => records.length > 0, 'the request record');
    const rec = records.at(-1);
    assert.equal(rec?.protocol, 'mqtt');
    assert.equal(rec?.app, 'app-a');
    assert.equal(rec?.model, 'demo');
    assert.equal(rec?.outcome, 'OK');
  });

  it('MQTT 3.1.1: reply on replyTo with id and servedBy in the payload', async () => {
    const r = await v3.request('demo', INFER, { key: keyFor('a') });
    assert.equal(r.topic, v3.replyTopic);
    assert.equal(r.doc['servedBy'], 'edge');
    assert.match(String(r.doc['id']), /^c\d+$/);
    assert.ok(Array.isArray(r.doc['outputs']));
  });

  it('many concurrent requests from both versions: each reply matches its request, none lost, none stray', { timeout: 30_000 }, async () => {
    const N = 60;
    const replies = await Promise.all(
      Array.from({ length: N }, (_, i) => {
        const data = [i, i + 1, i + 2, i + 3];
        const body = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data }] };
        return (i % 2 === 0 ? v5 : v3).request('demo', body, { key: keyFor('a') }).then((r) => ({ i, r }));
      }),
    );
    assert.equal(replies.length, N);
    for (const { r } of replies) assert.equal(errorCode(r), undefined, JSON.stringify(r.doc));
    assert.deepEqual(v5.strays, []);
    assert.deepEqual(v3.strays, []);
    // The simulated model echoes a function of its input: each reply carries its own request's data.
    const outputs = replies.map(({ r }) => JSON.stringify((r.doc['outputs'] as unknown[])[0]));
    assert.equal(new Set(outputs).size, N, 'every reply has a different answer: replies were not crossed');
  });

  it('errors come back as replies: unauthenticated, bad key, ungranted private model, unknown model', async () => {
    for (const c of [v5, v3]) {
      assert.equal(errorCode(await c.request('demo', INFER)), 'MG_UNAUTHENTICATED');
      assert.equal(errorCode(await c.request('demo', INFER, { key: 'nope' })), 'MG_UNAUTHENTICATED');
      assert.equal(errorCode(await c.request('secret', INFER, { key: keyFor('a') })), 'MG_FORBIDDEN');
      assert.equal(errorCode(await c.request('nosuch', INFER, { key: keyFor('a') })), 'MG_MODEL_NOT_FOUND');
      const granted = await c.request('secret', INFER, { key: 'key-insider' });
      assert.equal(errorCode(granted), undefined, 'the granted app is served');
    }
    const r = await v5.request('secret', INFER, { key: keyFor('a') });
    assert.equal(r.userProperties?.['x-modelguard-error'], 'MG_FORBIDDEN');
    assert.equal(errorCode(r), 'MG_FORBIDDEN');
    const v3err = await v3.request('demo', INFER);
    assert.match(String(v3err.doc['id']), /^c\d+$/, 'the 3.1.1 error reply echoes id');
    assert.equal(typeof (v3err.doc['error'] as { message?: unknown }).message, 'string');
  });

  it('malformed payloads: not JSON, a bad tensor, a bad timeoutMs → MG_BAD_REQUEST', async () => {
    const notJson = await v5.request('demo', {}, { key: keyFor('a'), raw: Buffer.from('{not json') });
    assert.equal(errorCode(notJson), 'MG_BAD_REQUEST');
    const badTensor = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3] }] };
    assert.equal(errorCode(await v5.request('demo', badTensor, { key: keyFor('a') })), 'MG_BAD_REQUEST');
    assert.equal(errorCode(await v3.request('demo', badTensor, { key: keyFor('a') })), 'MG_BAD_REQUEST');
    assert.equal(errorCode(await v3.request('demo', { ...INFER, timeoutMs: -5 }, { key: keyFor('a') })), 'MG_BAD_REQUEST');
    assert.equal(errorCode(await v3.request('demo', { inputs: 'x' }, { key: keyFor('a') })), 'MG_BAD_REQUEST');
  });

  it('no reply address at all: counted and dropped, and the ingress keeps serving', async () => {
    const dropped = gw.mqtt?.stats.dropped ?? 0;
    const before = records.length;
    void v5.request('demo', INFER, { key: keyFor('a'), noReply: true, timeoutMs: 100 }).catch(() => undefined);
    v3.client.publish('modelguard/v1/infer/demo', '{not json at all', { qos: 1 });
    await waitFor(() => (gw.mqtt?.stats.dropped ?? 0) === dropped + 2, 'two requests dropped');
    await waitFor(() => records.length >= before + 2, 'dropped requests recorded');
    assert.ok(records.slice(before).every((r) => r.outcome === 'MG_BAD_REQUEST' && r.protocol === 'mqtt'));
    assert.equal(errorCode(await v3.request('demo', INFER, { key: keyFor('a') })), undefined);
  });

  it('metrics count MQTT requests by protocol and outcome, like HTTP ones', async () => {
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    assert.match(text, /modelguard_requests_total\{[^}]*protocol="mqtt"[^}]*outcome="OK"[^}]*\} \d+/);
    assert.match(text, /modelguard_requests_total\{[^}]*protocol="mqtt"[^}]*outcome="MG_FORBIDDEN"[^}]*\} \d+/);
    assert.match(text, /^modelguard_mqtt_connected 1$/m);
    assert.equal(Number(/^modelguard_mqtt_dropped_total (\d+)$/m.exec(text)?.[1]), gw.mqtt?.stats.dropped);
    assert.ok((gw.mqtt?.stats.dropped ?? 0) >= 2, 'the dropped requests of the test before');
    assert.equal(Number(/^modelguard_mqtt_refused_total (\d+)$/m.exec(text)?.[1]), gw.mqtt?.stats.refused);
  });

  it('the HTTP path still works beside it (same process, same pipeline)', async () => {
    const p = pool(gw.httpUrl, 2);
    closers.push(() => p.close());
    assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })).status, 200);
  });
});

describe('MQTT ingress under load and deadlines', () => {
  it('queue full → MG_QUEUE_FULL replies; deadline (timeoutMs) → MG_QUEUE_TIMEOUT; every request answered once', { timeout: 30_000 }, async () => {
    const broker = await startMosquitto();
    closers.push(() => broker.close());
    const acc = await accelerator({ slots: 1, serviceTime: 60 });
    closers.push(() => acc.close());
    const gw = await gateway({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a', maxLength: 3, maxWait: '5s' }], gateway: { mqtt: { url: broker.url } } });
    closers.push(() => gw.close());
    const c = await Caller.create(broker.url, 5);
    closers.push(() => c.close());

    const N = 30;
    const replies = await Promise.all(Array.from({ length: N }, () => c.request('demo', INFER, { key: keyFor('a'), timeoutMs: 20_000 })));
    const codes = replies.map(errorCode);
    const full = codes.filter((x) => x === 'MG_QUEUE_FULL').length;
    const ok = codes.filter((x) => x === undefined).length;
    assert.equal(full + ok, N, `only answers and MG_QUEUE_FULL: ${codes.join(',')}`);
    assert.ok(full >= N / 2, `most are refused at once: ${full}`);
    const refused = replies.find((r) => errorCode(r) === 'MG_QUEUE_FULL');
    assert.ok(Number(refused?.userProperties?.['x-modelguard-retry-after-ms']) > 0, 'retry hint on a retryable error');

    // A deadline shorter than the wait behind a busy slot: answered with the deadline error.
    const busy = Array.from({ length: 3 }, () => c.request('demo', INFER, { key: keyFor('a') }));
    const late = await c.request('demo', { ...INFER, timeoutMs: 30 }, { key: keyFor('a') });
    assert.ok(['MG_QUEUE_TIMEOUT', 'MG_BACKEND_TIMEOUT'].includes(errorCode(late) ?? ''), JSON.stringify(late.doc));
    await Promise.all(busy);
    assert.deepEqual(c.strays, []);
  });
});

describe('MQTT ingress shutdown', () => {
  it('close() stops taking requests and lets those in flight and queued answer', { timeout: 20_000 }, async () => {
    const broker = await startMosquitto();
    closers.push(() => broker.close());
    const acc = await accelerator({ slots: 1, serviceTime: 150 });
    closers.push(() => acc.close());
    const gw = await gateway({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }], gateway: { mqtt: { url: broker.url } } });
    const c = await Caller.create(broker.url, 5);
    closers.push(() => c.close());
    const pending = Array.from({ length: 3 }, () => c.request('demo', INFER, { key: keyFor('a') }));
    // All three must have reached ModelGuard (one running, two queued): a request still on its way
    // from mosquitto when the subscription ends is not ModelGuard's to answer.
    const queued = (): number => gw.broker.status().groups.find((g) => g.name === 'a')?.queued ?? 0;
    await waitFor(() => acc.requests().some((r) => r.url.includes('/infer')) && queued() === 2, 'one request running and two queued');
    await gw.close();
    const replies = await Promise.all(pending);
    assert.deepEqual(replies.map(errorCode), [undefined, undefined, undefined]);
    await assert.rejects(c.request('demo', INFER, { key: keyFor('a'), timeoutMs: 300 }), /no reply/, 'nobody takes requests after close');
  });
});

describe('MQTT ingress and app limits', () => {
  it('an app over its rate limit gets MG_RATE_LIMITED with a retry hint, on the reply topic', { timeout: 20_000 }, async () => {
    const broker = await startMosquitto();
    closers.push(() => broker.close());
    const acc = await accelerator({ slots: 1 });
    closers.push(() => acc.close());
    const gw = await gateway({
      endpoints: [{ url: acc.url, slots: 1 }],
      groups: [{ name: 'a' }],
      gateway: { mqtt: { url: broker.url } },
      extra: [{ apiVersion: API, kind: 'App', metadata: { name: 'slow-app' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha256Hex('key-slow') }], rateLimit: { requestsPerSecond: 0.1, burst: 1 } } }],
    });
    closers.push(() => gw.close());
    const c = await Caller.create(broker.url, 4);
    closers.push(() => c.close());
    assert.equal(errorCode(await c.request('demo', INFER, { key: 'key-slow' })), undefined);
    const limited = await c.request('demo', INFER, { key: 'key-slow' });
    assert.equal(errorCode(limited), 'MG_RATE_LIMITED');
    const retry = (limited.doc['error'] as { retryAfterMs?: number }).retryAfterMs ?? 0;
    assert.ok(retry > 1000 && retry <= 10_000, `retryAfterMs is the time to the next token: ${retry}`);
  });
});

describe('ModelGuard as an authenticated client of mosquitto', () => {
  it('connects with username and passwordFile; the broker ACL keeps devices off the request topics', { timeout: 20_000 }, async () => {
    const broker = await startMosquitto({
      users: { modelguard: 'mg-secret', cam: 'cam-secret' },
      acl: [
        'user modelguard',
        'topic read modelguard/v1/infer/#',
        'topic write test/replies/#',
        'user cam',
        'topic write modelguard/v1/infer/#',
        'topic read test/replies/#',
      ],
    });
    closers.push(() => broker.close());
    const acc = await accelerator({ slots: 1 });
    closers.push(() => acc.close());
    const dir = mkdtempSync(join(tmpdir(), 'mg-mqtt-'));
    writeFileSync(join(dir, 'pw'), 'mg-secret\n');
    const gw = await gateway({
      endpoints: [{ url: acc.url, slots: 1 }],
      groups: [{ name: 'a' }],
      gateway: { mqtt: { url: broker.url, username: 'modelguard', passwordFile: join(dir, 'pw'), clientId: 'mg-test' } },
    });
    closers.push(() => gw.close());
    const cam = await Caller.create(broker.url, 5, { username: 'cam', password: 'cam-secret' });
    closers.push(() => cam.close());
    assert.equal(errorCode(await cam.request('demo', INFER, { key: keyFor('a') })), undefined);
    // The device may not read the request topic (where other devices' keys travel).
    // The device may not read the request topic (where other devices' keys travel): mosquitto
    // grants the subscription but delivers nothing the ACL forbids.
    const spy = await Caller.create(broker.url, 5, { username: 'cam', password: 'cam-secret' });
    closers.push(() => spy.close());
    const seen: string[] = [];
    spy.client.on('message', (topic) => seen.push(topic));
    await spy.client.subscribeAsync('modelguard/v1/infer/#', { qos: 1 });
    assert.equal(errorCode(await cam.request('demo', INFER, { key: keyFor('a') })), undefined);
    assert.deepEqual(seen.filter((t) => t.startsWith('modelguard/')), []);
  });
});
