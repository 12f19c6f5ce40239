// The embedded broker (aedes, MQTT 3.1.1) of the all-in-one box: devices log in with their app's
// key, ModelGuard knows who published, and errors come back as replies like on mosquitto.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import mqtt from 'mqtt';
import type { RequestRecord } from '../../src/core/events.ts';
import type { Gateway } from '../../src/compose/gateway.ts';
import { startGateway } from '../../src/compose/gateway.ts';
import { accelerator, keyFor, snapshotFor, INFER_BODY, waitFor } from '../helpers/harness.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { Caller, errorCode } from './helpers.ts';

const API = 'modelguard.io/v1alpha1';
const INFER = JSON.parse(INFER_BODY) as Record<string, unknown>;
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

describe('embedded MQTT broker', () => {
  let gw: Gateway;
  let url: string;
  const records: RequestRecord[] = [];

  before(async () => {
    const acc = await accelerator({ slots: 2, serviceTime: 2, models: ['demo', 'secret'] });
    closers.push(() => acc.close());
    gw = await startGateway(
      snapshotFor({
        endpoints: [{ url: acc.url, slots: 2 }],
        groups: [{ name: 'a' }],
        gateway: { mqtt: { embedded: true } },
        extra: [
          { apiVersion: API, kind: 'Model', metadata: { name: 'secret' }, spec: { backend: 'accel', visibility: 'private' } },
          { apiVersion: API, kind: 'App', metadata: { name: 'insider' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha256Hex('key-insider') }], models: ['secret'] } },
        ],
      }),
      { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', mqtt: 'mqtt://127.0.0.1:0' },
    );
    closers.push(() => gw.close());
    gw.pipeline.events.subscribe((r) => records.push(r));
    assert.match(gw.mqttUrl ?? '', /^mqtt:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(gw.mqttUrl, 'mqtt://127.0.0.1:0');
    url = gw.mqttUrl ?? '';
  });

  it('a device logged in as its app (username = app, password = key) is served as that app, with no key in the payload', async () => {
    const dev = await Caller.create(url, 4, { username: 'app-a', password: keyFor('a') });
    closers.push(() => dev.close());
    const r = await dev.request('demo', INFER);
    assert.equal(errorCode(r), undefined, JSON.stringify(r.doc));
    assert.equal(r.doc['servedBy'], 'edge');
    await waitFor(() => records.some((x) => x.app === 'app-a' && x.protocol === 'mqtt' && x.outcome === 'OK'), 'the record of app-a');
    const rec = records.find((x) => x.app === 'app-a');
    assert.equal(rec?.source, '127.0.0.1', 'the firewall sees the device address');
    assert.equal(errorCode(await dev.request('secret', INFER)), 'MG_FORBIDDEN', 'grants follow the connection identity');
  });

  it('a wrong password or a username of another app is refused at CONNECT', async () => {
    await assert.rejects(Caller.create(url, 4, { username: 'app-a', password: 'wrong' }), /Bad username or password|Not authorized/i);
    await assert.rejects(Caller.create(url, 4, { username: 'insider', password: keyFor('a') }), /Bad username or password|Not authorized/i);
  });

  it('an anonymous device must send a key per request, and is answered only with errors: it reads nothing private', async () => {
    const anon = await Caller.create(url, 4);
    closers.push(() => anon.close());
    assert.equal(errorCode(await anon.request('demo', INFER)), 'MG_UNAUTHENTICATED');
    // Its reply topic is outside the prefix, readable by any device: the answer is refused, not run.
    const before = records.filter((r) => r.outcome === 'OK').length;
    assert.equal(errorCode(await anon.request('demo', INFER, { key: 'key-insider' })), 'MG_FORBIDDEN');
    assert.equal(errorCode(await anon.request('secret', INFER, { key: 'key-insider' })), 'MG_FORBIDDEN');
    assert.equal(records.filter((r) => r.outcome === 'OK').length, before);
    // It may not read an app's replies either.
    await assert.rejects(anon.client.subscribeAsync('modelguard/v1/insider/replies/#', { qos: 1 }), /Subscribe error/);
  });

  it('errors as replies: malformed JSON is dropped (no replyTo readable), a bad tensor and a bad timeout answered', async () => {
    const dev = await Caller.create(url, 4, { username: 'app-a', password: keyFor('a') });
    closers.push(() => dev.close());
    const dropped = gw.mqtt?.stats.dropped ?? 0;
    dev.client.publish('modelguard/v1/infer/demo', '{oops', { qos: 1 });
    await waitFor(() => (gw.mqtt?.stats.dropped ?? 0) === dropped + 1, 'the unanswerable request counted');
    assert.equal(errorCode(await dev.request('demo', { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1] }] })), 'MG_BAD_REQUEST');
    assert.equal(errorCode(await dev.request('demo', { ...INFER, timeoutMs: 'soon' })), 'MG_BAD_REQUEST');
    assert.equal(errorCode(await dev.request('nosuch', INFER)), 'MG_MODEL_NOT_FOUND');
  });

  it('many concurrent requests over several devices: each reply matches its request', { timeout: 30_000 }, async () => {
    const devices = await Promise.all([1, 2, 3].map(() => Caller.create(url, 4, { username: 'app-a', password: keyFor('a') })));
    closers.push(...devices.map((d) => () => d.close()));
    const N = 60;
    const replies = await Promise.all(
      Array.from({ length: N }, (_, i) => devices[i % 3]!.request('demo', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [i, 0, 0, 1] }] })),
    );
    for (const r of replies) assert.equal(errorCode(r), undefined);
    assert.equal(new Set(replies.map((r) => JSON.stringify(r.doc['outputs']))).size, N);
    for (const d of devices) assert.deepEqual(d.strays, []);
  });

  it('devices may not read the request topics; an MQTT 5 client is told the embedded broker speaks 3.1.1', async () => {
    const dev = await mqtt.connectAsync(url, { protocolVersion: 4, username: 'app-a', password: keyFor('a'), reconnectPeriod: 0 });
    closers.push(() => dev.endAsync());
    // SUBACK 0x80 (MQTT.js reports it as a subscribe error); the connection stays open.
    await assert.rejects(dev.subscribeAsync('modelguard/v1/infer/#', { qos: 1 }), /Subscribe error/);
    assert.ok(dev.connected);
    const ok = await dev.subscribeAsync('devices/a/replies', { qos: 1 });
    assert.equal(ok[0]?.qos, 1);
    await assert.rejects(mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000 }), /protocol|Unsupported|Connection/i);
  });

  it('the process stays up and serving after all of the above', async () => {
    const dev = await Caller.create(url, 4, { username: 'insider', password: 'key-insider' });
    closers.push(() => dev.close());
    assert.equal(errorCode(await dev.request('secret', INFER)), undefined);
  });
});

describe('embedded broker packet limit', () => {
  it('a packet far over maxBodySize closes that connection before it is buffered; others are served', { timeout: 20_000 }, async () => {
    const acc = await accelerator({ slots: 1 });
    closers.push(() => acc.close());
    const gw = await startGateway(snapshotFor({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }], gateway: { maxBodySize: '1Ki', mqtt: { embedded: true } } }), {
      http: '127.0.0.1:0',
      grpc: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      mqtt: 'mqtt://127.0.0.1:0',
    });
    closers.push(() => gw.close());
    const url = gw.mqttUrl ?? '';
    const hog = await mqtt.connectAsync(url, { protocolVersion: 4, username: 'app-a', password: keyFor('a'), reconnectPeriod: 0 });
    closers.push(() => hog.endAsync(true));
    const closed = new Promise<void>((r) => hog.once('close', () => r()));
    hog.publish('modelguard/v1/infer/demo', Buffer.alloc(1024 * 1024, 0x20), { qos: 0 });
    await closed;
    const dev = await Caller.create(url, 4, { username: 'app-a', password: keyFor('a') });
    closers.push(() => dev.close());
    assert.equal(errorCode(await dev.request('demo', INFER)), undefined);
    // Over maxBodySize but under the packet cap: refused as a request, with a reply.
    const big = { ...INFER, pad: 'x'.repeat(4096) };
    assert.equal(errorCode(await dev.request('demo', big)), 'MG_TOO_LARGE');
  });
});

describe('embedded broker port already taken', () => {
  it('startGateway fails with the address error, or runs without MQTT when onMqttError is given', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    closers.push(() => new Promise((r) => blocker.close(() => r())));
    const port = (blocker.address() as net.AddressInfo).port;
    const acc = await accelerator({ slots: 1 });
    closers.push(() => acc.close());
    const snap = snapshotFor({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }], gateway: { mqtt: { embedded: true } } });
    const opts = { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', mqtt: `mqtt://127.0.0.1:${port}` };
    await assert.rejects(startGateway(snap, opts), /EADDRINUSE/);
    let reported: Error | undefined;
    const gw = await startGateway(snap, { ...opts, onMqttError: (e) => (reported = e) });
    closers.push(() => gw.close());
    assert.match(String(reported), /EADDRINUSE/);
    assert.equal(gw.mqttUrl, undefined);
    const res = await fetch(`${gw.httpUrl}/v2/health/live`);
    assert.equal(res.status, 200);
  });
});
