// A hostile MQTT corpus, built from the threat model in docs/security.md: raw MQTT 3.1.1 packets
// over net.Socket against the embedded broker (subscriptions, publishes, malformed packets,
// logins), and MQTT.js (MQTT 5 and 3.1.1) against a real mosquitto. Each case gets its exact
// documented outcome — a reply with its code, a refusal or drop that is counted and published
// nowhere, a SUBACK code, a closed connection — and nothing refused reaches the model server.
// Afterwards the process is alive, its heap bounded, and normal requests still succeed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Gateway } from '../../src/compose/gateway.ts';
import { startGateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, keyFor, pool, send, snapshotFor, INFER_BODY, waitFor } from '../helpers/harness.ts';
import { connect, errorCode, startMosquitto, type Mosquitto } from '../mqtt/helpers.ts';
import { connectPacket, packet, publishPacket, RawMqtt, remainingLength, subscribePacket } from './raw-mqtt.ts';
import { modelCalls } from './reach.ts';

const API = 'modelguard.io/v1alpha1';
const INFER = JSON.parse(INFER_BODY) as Record<string, unknown>;
const KEY_A = keyFor('a');
const KEY_B = keyFor('b');
const P = 'modelguard/v1';
const closers: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** Deep enough to overflow any recursive parser, small enough to stay under maxBodySize (64 KiB). */
const NEST = 30_000;
const deep = (n: number, open = '[', close = ']'): string => open.repeat(n) + close.repeat(n);

function setup(mqtt: Record<string, unknown>, acc: ModelServer): ReturnType<typeof snapshotFor> {
  return snapshotFor({
    endpoints: [{ url: acc.url, slots: 2 }],
    models: ['demo'],
    groups: [{ name: 'a' }, { name: 'b' }],
    gateway: { maxBodySize: '64Ki', mqtt },
    extra: [
      { apiVersion: API, kind: 'Model', metadata: { name: 'secret' }, spec: { backend: 'accel', visibility: 'private' } },
      { apiVersion: API, kind: 'App', metadata: { name: 'insider' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha256Hex('key-insider') }], models: ['secret'] } },
    ],
  });
}

/** What a published request must lead to. */
type Outcome =
  | { readonly kind: 'reply'; readonly code: string | undefined; readonly id?: unknown }
  | { readonly kind: 'refused' }
  | { readonly kind: 'dropped' }
  | { readonly kind: 'ignored' };

interface PublishCase {
  readonly what: string;
  /** The request topic (default `<P>/infer/demo`). */
  readonly topic?: string;
  /** Payload; `$REPLY` is replaced by the case's reply topic. */
  readonly payload: string | Buffer;
  /** Reply topic (default: the caller's own, unique per case). */
  readonly replyTo?: string;
  readonly outcome: Outcome;
  readonly served?: boolean;
  readonly retain?: boolean;
}

const body = (extra: Record<string, unknown> = {}): string => JSON.stringify({ ...INFER, replyTo: '$REPLY', id: 7, ...extra });

describe('hostile MQTT corpus', () => {
  let acc: ModelServer;
  let gw: Gateway;
  let port: number;
  let mosq: Mosquitto;
  let ext: Gateway;
  let total = 0;

  before(async () => {
    acc = await accelerator({ slots: 2, serviceTime: 1, recordLimit: 1_000_000, models: ['demo', 'secret'] });
    closers.push(() => acc.close());
    gw = await startGateway(setup({ embedded: true }, acc), { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', mqtt: 'mqtt://127.0.0.1:0' });
    closers.push(() => gw.close());
    port = Number(new URL(gw.mqttUrl ?? '').port);
    mosq = await startMosquitto();
    closers.push(() => mosq.close());
    ext = await startGateway(setup({ url: mosq.url }, acc), { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    closers.push(() => ext.close());
  });

  // ── subscriptions on the embedded broker ────────────────────────────────────────────────────
  const GRANTED = 1;
  const REFUSED = 0x80;
  /** filter → [logged in as app-a, anonymous] */
  const SUBSCRIPTIONS: [string, number, number][] = [
    ['#', REFUSED, REFUSED],
    ['+', GRANTED, GRANTED],
    ['+/#', REFUSED, REFUSED],
    ['+/+', GRANTED, GRANTED],
    ['+/+/+', REFUSED, REFUSED],
    ['+/+/+/+', REFUSED, REFUSED],
    ['+/+/+/+/#', REFUSED, REFUSED],
    ['modelguard', GRANTED, GRANTED],
    ['modelguard/#', REFUSED, REFUSED],
    ['modelguard/+', GRANTED, GRANTED],
    ['modelguard/+/#', REFUSED, REFUSED],
    [`${P}`, GRANTED, GRANTED],
    [`${P}/#`, REFUSED, REFUSED],
    [`${P}/+`, REFUSED, REFUSED],
    [`${P}/+/#`, REFUSED, REFUSED],
    [`${P}/infer`, REFUSED, REFUSED],
    [`${P}/infer/#`, REFUSED, REFUSED],
    [`${P}/infer/+`, REFUSED, REFUSED],
    [`${P}/infer/demo`, REFUSED, REFUSED],
    [`${P}/infer/demo/#`, REFUSED, REFUSED],
    [`${P}/infer/+/#`, REFUSED, REFUSED],
    [`${P}/infer/`, REFUSED, REFUSED],
    ['+/v1/infer/+', REFUSED, REFUSED],
    ['+/+/infer/#', REFUSED, REFUSED],
    [`${P}/+/replies/#`, REFUSED, REFUSED],
    [`${P}/app-b/replies/#`, REFUSED, REFUSED],
    [`${P}/insider/replies/x`, REFUSED, REFUSED],
    [`${P}/app-a/replies/#`, GRANTED, REFUSED],
    [`${P}/app-a/#`, GRANTED, REFUSED],
    [`${P}/app-a/replies/one`, GRANTED, REFUSED],
    ['+/v1/app-a/replies/#', GRANTED, REFUSED],
    ['+/+/app-a/#', GRANTED, REFUSED],
    ['devices/#', GRANTED, GRANTED],
    ['outside/+/x', GRANTED, GRANTED],
    ['$share/g/modelguard/v1/infer/+', REFUSED, REFUSED],
    ['$share/g/#', REFUSED, REFUSED],
  ];

  it(`${SUBSCRIPTIONS.length * 2} raw SUBSCRIBEs: granted only outside the prefix and inside the device's own app`, async () => {
    const a = await RawMqtt.login(port, { username: 'app-a', password: KEY_A });
    const anon = await RawMqtt.login(port);
    closers.push(() => a.close(), () => anon.close());
    assert.equal(a.connack, 0);
    assert.equal(anon.connack, 0);
    const wrong: string[] = [];
    let id = 1;
    for (const [filter, forA, forAnon] of SUBSCRIPTIONS) {
      const ga = await a.subscribe(filter, id++);
      const gn = await anon.subscribe(filter, id++);
      if (ga !== forA) wrong.push(`app-a ${filter}: ${ga} (want ${forA})`);
      if (gn !== forAnon) wrong.push(`anonymous ${filter}: ${gn} (want ${forAnon})`);
    }
    assert.deepEqual(wrong, []);
    assert.equal(a.closed || anon.closed, false, 'a refused subscription keeps the connection');
    total += SUBSCRIPTIONS.length * 2;
  });

  // ── publishes on the embedded broker, from a logged-in device and an anonymous one ───────────
  const LOGGED_IN: PublishCase[] = [
    { what: 'a valid request', payload: body(), outcome: { kind: 'reply', code: undefined, id: 7 }, served: true },
    { what: 'a valid retained request (served once, not stored)', payload: body(), retain: true, outcome: { kind: 'reply', code: undefined, id: 7 }, served: true },
    { what: 'serviceGroup spoofed (ignored: the app fixes the group)', payload: body({ serviceGroup: 'b' }), outcome: { kind: 'reply', code: undefined, id: 7 }, served: true },
    { what: 'unknown model', topic: `${P}/infer/nosuch`, payload: body(), outcome: { kind: 'reply', code: 'MG_MODEL_NOT_FOUND', id: 7 } },
    { what: 'model name in another case', topic: `${P}/infer/DEMO`, payload: body(), outcome: { kind: 'reply', code: 'MG_MODEL_NOT_FOUND', id: 7 } },
    { what: 'unicode model name', topic: `${P}/infer/dé`, payload: body(), outcome: { kind: 'reply', code: 'MG_MODEL_NOT_FOUND', id: 7 } },
    { what: '30 KB model name', topic: `${P}/infer/${'m'.repeat(30_000)}`, payload: body(), outcome: { kind: 'reply', code: 'MG_MODEL_NOT_FOUND', id: 7 } },
    { what: 'private model not granted', topic: `${P}/infer/secret`, payload: body(), outcome: { kind: 'reply', code: 'MG_FORBIDDEN', id: 7 } },
    { what: 'empty model segment', topic: `${P}/infer/`, payload: body(), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'topic outside the prefix (not a request)', topic: 'elsewhere/infer/demo', payload: body(), outcome: { kind: 'ignored' } },
    { what: 'payload not JSON', payload: '{oops', outcome: { kind: 'dropped' } },
    { what: 'payload a JSON array', payload: '[1,2]', outcome: { kind: 'dropped' } },
    { what: 'empty payload', payload: '', outcome: { kind: 'dropped' } },
    { what: 'no replyTo', payload: JSON.stringify(INFER), outcome: { kind: 'dropped' } },
    { what: 'replyTo with a wildcard', payload: body(), replyTo: 'a/#', outcome: { kind: 'dropped' } },
    { what: 'replyTo a $ topic', payload: body(), replyTo: '$SYS/x', outcome: { kind: 'dropped' } },
    { what: 'replyTo empty', payload: body(), replyTo: '', outcome: { kind: 'dropped' } },
    { what: 'replyTo not a string', payload: JSON.stringify({ ...INFER, replyTo: 42 }), outcome: { kind: 'dropped' } },
    { what: '30k levels of nesting in the tensor (replyTo first)', payload: `{"replyTo":"$REPLY","id":7,"inputs":${deep(NEST)}}`, outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: '30k levels of nesting before replyTo', payload: `{"inputs":${deep(NEST)},"replyTo":"$REPLY","id":"s"}`, outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 's' } },
    { what: '30k levels of nesting in id (answered without id)', payload: `{"replyTo":"$REPLY","id":${deep(NEST)}}`, outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: undefined } },
    { what: '10k nested objects', payload: `{"replyTo":"$REPLY","id":1,"x":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`, outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 1 } },
    { what: 'unbalanced nesting (never closed)', payload: `{"replyTo":"$REPLY","id":2,"x":${'['.repeat(1000)}`, outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 2 } },
    { what: 'nesting hidden in strings is not nesting', payload: body({ note: '['.repeat(1000) }), outcome: { kind: 'reply', code: undefined, id: 7 }, served: true },
    { what: 'timeoutMs not a number', payload: body({ timeoutMs: 'soon' }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'timeoutMs negative', payload: body({ timeoutMs: -1 }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'timeoutMs zero', payload: body({ timeoutMs: 0 }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'timeoutMs infinite (1e999)', payload: body().replace('"id":7', '"id":7,"timeoutMs":1e999'), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'apiKey not a string', payload: body({ apiKey: 5 }), outcome: { kind: 'reply', code: 'MG_UNAUTHENTICATED', id: 7 } },
    { what: 'apiKey unknown', payload: body({ apiKey: 'nope' }), outcome: { kind: 'reply', code: 'MG_UNAUTHENTICATED', id: 7 } },
    { what: "another app's key: its answer may not go to app-a's replies", payload: body({ apiKey: KEY_B }), outcome: { kind: 'refused' } },
    { what: 'replyTo a request topic (loop)', payload: body(), replyTo: `${P}/infer/demo`, outcome: { kind: 'refused' } },
    { what: 'replyTo the empty request topic', payload: body(), replyTo: `${P}/infer/`, outcome: { kind: 'refused' } },
    { what: "replyTo another app's replies", payload: body(), replyTo: `${P}/app-b/replies/x`, outcome: { kind: 'refused' } },
    { what: 'replyTo the bare prefix', payload: body(), replyTo: P, outcome: { kind: 'refused' } },
    { what: 'replyTo a reserved topic', payload: body(), replyTo: `${P}/app-a`, outcome: { kind: 'refused' } },
    { what: 'replyTo a reserved topic two levels down', payload: body(), replyTo: `${P}/app-a/other/x`, outcome: { kind: 'refused' } },
    { what: 'replyTo outside the prefix: only an error may go there', payload: body(), replyTo: 'outside/logged-in', outcome: { kind: 'reply', code: 'MG_FORBIDDEN', id: 7 } },
    { what: 'shape and data disagree', payload: body({ inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1] }] }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'unknown datatype', payload: body({ inputs: [{ name: 'input', shape: [1, 1], datatype: 'FP99', data: [1] }] }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'shape of 2^60 elements', payload: body({ inputs: [{ name: 'input', shape: [1 << 30, 1 << 30], datatype: 'FP32', data: [1] }] }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'inputs not an array', payload: body({ inputs: 'x' }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'payload over maxBodySize', payload: body({ pad: 'x'.repeat(70 * 1024) }), outcome: { kind: 'reply', code: 'MG_TOO_LARGE', id: 7 } },
    { what: '__proto__ in the payload', payload: body().replace('{', '{"__proto__":{"replyTo":"x"},'), outcome: { kind: 'reply', code: undefined, id: 7 }, served: true },
  ];

  const ANONYMOUS: PublishCase[] = [
    { what: 'no key', payload: body(), outcome: { kind: 'reply', code: 'MG_UNAUTHENTICATED', id: 7 } },
    { what: "app-a's key, answer to a topic any device reads", payload: body({ apiKey: KEY_A }), outcome: { kind: 'reply', code: 'MG_FORBIDDEN', id: 7 } },
    { what: 'unknown key, replyTo into app-a\'s replies (no error written there)', payload: body({ apiKey: 'nope' }), replyTo: `${P}/app-a/replies/anon`, outcome: { kind: 'refused' } },
    { what: 'no key, replyTo into app-a\'s replies', payload: body(), replyTo: `${P}/app-a/replies/anon2`, outcome: { kind: 'refused' } },
    { what: 'nesting 30k deep', payload: `{"replyTo":"$REPLY","id":3,"inputs":${deep(NEST)}}`, outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 3 } },
    { what: 'empty model segment', topic: `${P}/infer/`, payload: body(), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST', id: 7 } },
    { what: 'private model with the insider\'s key, answer outside', topic: `${P}/infer/secret`, payload: body({ apiKey: 'key-insider' }), outcome: { kind: 'reply', code: 'MG_FORBIDDEN', id: 7 } },
  ];

  async function runPublishCases(who: 'app-a' | 'anonymous', cases: PublishCase[]): Promise<string[]> {
    const dev = who === 'app-a' ? await RawMqtt.login(port, { username: 'app-a', password: KEY_A }) : await RawMqtt.login(port);
    closers.push(() => dev.close());
    const root = who === 'app-a' ? `${P}/app-a/replies` : 'outside/anon';
    assert.equal(await dev.subscribe(`${root}/#`), GRANTED);
    if (who === 'app-a') assert.equal(await dev.subscribe('outside/#', 2), GRANTED);
    // During the anonymous cases, app-a's own device watches its replies: nothing may be written there.
    const watcher = await RawMqtt.login(port, who === 'anonymous' ? { username: 'app-a', password: KEY_A } : {});
    closers.push(() => watcher.close());
    if (who === 'anonymous') assert.equal(await watcher.subscribe(`${P}/app-a/replies/#`), GRANTED);
    const wrong: string[] = [];
    let n = 0;
    for (const c of cases) {
      const topic = c.replyTo ?? `${root}/c${n++}`;
      const payload = typeof c.payload === 'string' ? c.payload.replace('$REPLY', topic) : c.payload;
      const calls = modelCalls(acc);
      const stats = { ...(gw.mqtt?.stats ?? { refused: 0, dropped: 0, replied: 0, replyFailures: 0 }) };
      const seen = dev.deliveries.length + watcher.deliveries.length;
      dev.send(publishPacket(c.topic ?? `${P}/infer/demo`, payload, { qos: 1, id: 1 + (n % 60000), ...(c.retain ? { retain: true } : {}) }));
      const problems: string[] = [];
      const o = c.outcome;
      try {
        if (o.kind === 'reply') {
          await dev.until(() => dev.deliveries.some((d) => d.topic === topic));
          const d = dev.deliveries.find((x) => x.topic === topic);
          if (!d) throw new Error('no reply');
          const doc = JSON.parse(d.payload.toString()) as Record<string, unknown>;
          const code = (doc['error'] as { code?: string } | undefined)?.code;
          if (code !== o.code) problems.push(`code ${code} (want ${o.code})`);
          if ('id' in o && doc['id'] !== o.id) problems.push(`id ${JSON.stringify(doc['id'])} (want ${JSON.stringify(o.id)})`);
          const message = (doc['error'] as { message?: string } | undefined)?.message ?? '';
          if (message.length > 1024) problems.push(`message of ${message.length} chars`);
        } else if (o.kind === 'refused') {
          await waitFor(() => (gw.mqtt?.stats.refused ?? 0) === stats.refused + 1, 'the refusal counted');
        } else if (o.kind === 'dropped') {
          await waitFor(() => (gw.mqtt?.stats.dropped ?? 0) === stats.dropped + 1, 'the drop counted');
        } else {
          // Nothing happens: a valid request after it is answered, and nothing else came.
          const probe = `${root}/probe${n}`;
          dev.send(publishPacket(`${P}/infer/demo`, body().replace('$REPLY', probe), { qos: 1, id: 9 }));
          await dev.until(() => dev.deliveries.some((d) => d.topic === probe));
        }
      } catch (err) {
        problems.push((err as Error).message);
      }
      const reached = modelCalls(acc) - calls - (o.kind === 'ignored' ? 1 : 0);
      if (reached !== (c.served ? 1 : 0)) problems.push(`reached the model server ${reached}×`);
      if (o.kind !== 'reply' && o.kind !== 'ignored' && dev.deliveries.length + watcher.deliveries.length !== seen) problems.push('something was published');
      if (dev.closed) problems.push('connection closed');
      if (problems.length > 0) wrong.push(`${who}: ${c.what}: ${problems.join('; ')}`);
    }
    return wrong;
  }

  it(`${LOGGED_IN.length + ANONYMOUS.length} raw PUBLISHes on the embedded broker get their documented outcome; none refused reaches the model server`, { timeout: 120_000 }, async () => {
    const wrong = [...(await runPublishCases('app-a', LOGGED_IN)), ...(await runPublishCases('anonymous', ANONYMOUS))];
    assert.deepEqual(wrong, []);
    total += LOGGED_IN.length + ANONYMOUS.length;
  });

  // ── broken packets and logins: the connection is closed or CONNACK refuses; the broker lives ─
  const CLOSES: { what: string; bytes: () => Buffer; login?: boolean }[] = [
    { what: 'PUBLISH into its own reply topic (forging a reply)', bytes: () => publishPacket(`${P}/app-a/replies/x`, '{}'), login: true },
    { what: "PUBLISH into another app's reply topic", bytes: () => publishPacket(`${P}/app-b/replies/x`, '{}'), login: true },
    { what: 'PUBLISH into a reserved topic', bytes: () => publishPacket(`${P}/other`, '{}'), login: true },
    { what: 'PUBLISH into the bare prefix', bytes: () => publishPacket(P, '{}'), login: true },
    { what: 'PUBLISH one level below a request topic', bytes: () => publishPacket(`${P}/infer/demo/x`, body()), login: true },
    { what: 'PUBLISH with # in the topic', bytes: () => publishPacket(`${P}/infer/#`, '{}'), login: true },
    { what: 'PUBLISH with + in the topic', bytes: () => publishPacket(`${P}/infer/+`, '{}'), login: true },
    { what: 'PUBLISH with an empty topic', bytes: () => publishPacket('', '{}'), login: true },
    { what: 'remaining length of 5 bytes', bytes: () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]), login: true },
    { what: 'packet announcing 100 MB', bytes: () => Buffer.concat([Buffer.from([0x30]), remainingLength(100 * 1024 * 1024)]), login: true },
    { what: 'SUBSCRIBE before CONNECT', bytes: () => subscribePacket(1, 'devices/#') },
    { what: 'PUBLISH before CONNECT', bytes: () => publishPacket(`${P}/infer/demo`, body()) },
    { what: 'a second CONNECT', bytes: () => connectPacket({ username: 'app-a', password: KEY_A }), login: true },
    { what: 'reserved packet type 0', bytes: () => packet(0, 0, Buffer.alloc(0)), login: true },
    { what: 'SUBSCRIBE with wrong flags', bytes: () => packet(8, 0, Buffer.from([0, 1, 0, 1, 0x61, 1])), login: true },
  ];

  it(`${CLOSES.length} malformed or forbidden packets close that connection, before any request runs`, async () => {
    const wrong: string[] = [];
    for (const c of CLOSES) {
      const calls = modelCalls(acc);
      const conn = c.login ? await RawMqtt.login(port, { username: 'app-a', password: KEY_A }) : await RawMqtt.open(port);
      closers.push(() => conn.close());
      conn.send(c.bytes());
      try {
        await conn.until(() => conn.closed);
      } catch {
        wrong.push(`${c.what}: still open`);
      }
      if (modelCalls(acc) !== calls) wrong.push(`${c.what}: reached the model server`);
    }
    assert.deepEqual(wrong, []);
    total += CLOSES.length;
  });

  it('a will message cannot forge replies: a will into another app\'s reply topics is never delivered', async () => {
    const watcher = await RawMqtt.login(port, { username: 'app-a', password: KEY_A });
    closers.push(() => watcher.close());
    assert.equal(await watcher.subscribe(`${P}/app-a/replies/#`), GRANTED);
    for (const topic of [`${P}/app-a/replies/forged`, `${P}/app-a/replies`]) {
      const b = await RawMqtt.login(port, { username: 'app-b', password: KEY_B, will: { topic, payload: '{"outputs":"forged"}', retain: true } });
      assert.equal(b.connack, 0);
      b.close(); // no DISCONNECT: the broker would publish the will
      await b.until(() => b.closed);
    }
    // A normal reply to app-a after the wills proves delivery has caught up.
    const dev = await RawMqtt.login(port, { username: 'app-a', password: KEY_A });
    closers.push(() => dev.close());
    await dev.subscribe(`${P}/app-a/replies/#`);
    dev.send(publishPacket(`${P}/infer/demo`, body().replace('$REPLY', `${P}/app-a/replies/after-will`), { qos: 1, id: 5 }));
    await watcher.until(() => watcher.deliveries.some((d) => d.topic === `${P}/app-a/replies/after-will`));
    assert.deepEqual(watcher.deliveries.filter((d) => d.payload.includes('forged')), []);
    total += 2;
  });

  const LOGINS: { what: string; opts: Parameters<typeof connectPacket>[0]; connack: number | 'closed' }[] = [
    { what: 'right app and key', opts: { username: 'app-a', password: KEY_A }, connack: 0 },
    { what: 'key alone, no username', opts: { password: KEY_A }, connack: 0 },
    { what: 'wrong key', opts: { username: 'app-a', password: 'nope' }, connack: 4 },
    { what: "another app's key", opts: { username: 'app-a', password: KEY_B }, connack: 4 },
    { what: 'username without password', opts: { username: 'app-a' }, connack: 4 },
    { what: 'a JWT-shaped garbage password', opts: { username: 'app-a', password: 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln' }, connack: 4 },
    { what: '16 KB password', opts: { username: 'app-a', password: 'p'.repeat(16_384) }, connack: 4 },
    { what: 'MQTT 5 (protocol level 5)', opts: { level: 5 }, connack: 'closed' },
    { what: 'protocol level 9', opts: { level: 9 }, connack: 'closed' },
  ];

  it(`${LOGINS.length} CONNECTs: the documented CONNACK codes`, async () => {
    const wrong: string[] = [];
    for (const l of LOGINS) {
      const c = await RawMqtt.login(port, l.opts);
      closers.push(() => c.close());
      const got = c.connack ?? (c.closed ? 'closed' : 'none');
      // A refused CONNACK is followed by the close; a level the broker cannot speak may close at once.
      const ok = got === l.connack || (l.connack === 'closed' && typeof got === 'number' && got !== 0);
      if (!ok) wrong.push(`${l.what}: ${got} (want ${l.connack})`);
    }
    assert.deepEqual(wrong, []);
    total += LOGINS.length;
  });

  // ── MQTT.js against mosquitto (external broker), MQTT 5 and 3.1.1 ────────────────────────────
  interface ExtCase {
    readonly what: string;
    readonly topic?: string;
    readonly payload: (reply: string) => string;
    readonly props?: (reply: string) => Record<string, unknown>;
    /** Reply topic when not the caller's own. */
    readonly replyTo?: string;
    readonly outcome: Outcome;
    readonly served?: boolean;
    readonly v5only?: boolean;
  }
  const extBody = (reply: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ ...INFER, apiKey: KEY_A, replyTo: reply, id: 7, ...extra });
  const EXTERNAL: ExtCase[] = [
    { what: 'a valid request', payload: (r) => extBody(r), outcome: { kind: 'reply', code: undefined }, served: true },
    { what: "a reply topic in the caller's own app space", payload: (r) => extBody(r), replyTo: `${P}/app-a/replies/ext`, outcome: { kind: 'reply', code: undefined }, served: true },
    { what: 'empty model segment', topic: `${P}/infer/`, payload: (r) => extBody(r), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST' } },
    { what: 'unknown model', topic: `${P}/infer/nosuch`, payload: (r) => extBody(r), outcome: { kind: 'reply', code: 'MG_MODEL_NOT_FOUND' } },
    { what: 'private model', topic: `${P}/infer/secret`, payload: (r) => extBody(r), outcome: { kind: 'reply', code: 'MG_FORBIDDEN' } },
    { what: 'no key', payload: (r) => JSON.stringify({ ...INFER, replyTo: r, id: 7 }), outcome: { kind: 'reply', code: 'MG_UNAUTHENTICATED' } },
    { what: 'reply topic = the request topic (loop)', payload: (r) => extBody(r), replyTo: `${P}/infer/demo`, outcome: { kind: 'refused' } },
    { what: 'reply topic = another request topic', payload: (r) => extBody(r), replyTo: `${P}/infer/other`, outcome: { kind: 'refused' } },
    { what: "reply topic in another app's space", payload: (r) => extBody(r), replyTo: `${P}/app-b/replies/x`, outcome: { kind: 'refused' } },
    { what: 'reply topic reserved', payload: (r) => extBody(r), replyTo: `${P}/x`, outcome: { kind: 'refused' } },
    { what: '30k nesting (replyTo salvaged)', payload: (r) => `{"apiKey":"${KEY_A}","replyTo":"${r}","id":7,"inputs":${deep(NEST)}}`, outcome: { kind: 'reply', code: 'MG_BAD_REQUEST' } },
    { what: '30k nesting in id', payload: (r) => `{"replyTo":"${r}","id":${deep(NEST)}}`, outcome: { kind: 'reply', code: 'MG_BAD_REQUEST' } },
    { what: 'bad tensor', payload: (r) => extBody(r, { inputs: [{ name: 'input', shape: [3], datatype: 'FP32', data: [1] }] }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST' } },
    { what: 'bad timeoutMs', payload: (r) => extBody(r, { timeoutMs: [] }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST' } },
    { what: 'over maxBodySize', payload: (r) => extBody(r, { pad: 'x'.repeat(70 * 1024) }), outcome: { kind: 'reply', code: 'MG_TOO_LARGE' } },
    { what: 'x-api-key user property twice', v5only: true, payload: () => JSON.stringify(INFER), props: (r) => ({ responseTopic: r, correlationData: Buffer.from('c'), userProperties: { 'x-api-key': [KEY_A, KEY_A] } }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST' } },
    { what: 'authorization user property not Bearer', v5only: true, payload: () => JSON.stringify(INFER), props: (r) => ({ responseTopic: r, correlationData: Buffer.from('c'), userProperties: { authorization: `Basic ${KEY_A}` } }), outcome: { kind: 'reply', code: 'MG_UNAUTHENTICATED' } },
    { what: 'user property and apiKey disagree', v5only: true, payload: () => JSON.stringify({ ...INFER, apiKey: KEY_B }), props: (r) => ({ responseTopic: r, correlationData: Buffer.from('c'), userProperties: { 'x-api-key': KEY_A } }), outcome: { kind: 'reply', code: 'MG_UNAUTHENTICATED' } },
    { what: 'responseTopic = the request topic (loop)', v5only: true, payload: () => JSON.stringify({ ...INFER, apiKey: KEY_A }), props: () => ({ responseTopic: `${P}/infer/demo`, correlationData: Buffer.from('c') }), outcome: { kind: 'refused' } },
    { what: 'invalid JSON with a responseTopic', v5only: true, payload: () => '{nope', props: (r) => ({ responseTopic: r, correlationData: Buffer.from('c') }), outcome: { kind: 'reply', code: 'MG_BAD_REQUEST' } },
    { what: 'invalid JSON without a reply address', payload: () => '{nope', outcome: { kind: 'dropped' } },
  ];

  for (const version of [5, 4] as const) {
    const cases = EXTERNAL.filter((c) => version === 5 || !c.v5only);
    it(`MQTT.js ${version === 5 ? '5' : '3.1.1'} on mosquitto: ${cases.length} cases get their documented outcome`, { timeout: 120_000 }, async () => {
      const dev = await connect(mosq.url, version);
      closers.push(() => dev.endAsync());
      const watcher = await connect(mosq.url, 5);
      closers.push(() => watcher.endAsync());
      const got: { topic: string; doc: Record<string, unknown> }[] = [];
      const watched: string[] = [];
      dev.on('message', (topic, raw) => got.push({ topic, doc: JSON.parse(raw.toString()) as Record<string, unknown> }));
      watcher.on('message', (topic) => watched.push(topic));
      await dev.subscribeAsync(`ext/${version}/#`, { qos: 1 });
      await dev.subscribeAsync(`${P}/app-a/replies/#`, { qos: 1 });
      await watcher.subscribeAsync(`${P}/app-b/replies/#`, { qos: 1 });
      const wrong: string[] = [];
      let n = 0;
      for (const c of cases) {
        const reply = c.replyTo ?? `ext/${version}/c${n++}`;
        const calls = modelCalls(acc);
        const stats = { ...(ext.mqtt?.stats ?? { refused: 0, dropped: 0, replied: 0, replyFailures: 0 }) };
        const props = version === 5 ? (c.props?.(reply) ?? {}) : {};
        const problems: string[] = [];
        try {
          await dev.publishAsync(c.topic ?? `${P}/infer/demo`, c.payload(reply), { qos: 1, ...(version === 5 ? { properties: props } : {}) });
          const o = c.outcome;
          if (o.kind === 'reply') {
            await waitFor(() => got.some((g) => g.topic === (props['responseTopic'] ?? reply)), `the reply to ${c.what}`);
            const r = got.find((g) => g.topic === (props['responseTopic'] ?? reply));
            const code = errorCode({ topic: '', doc: r?.doc ?? {}, raw: Buffer.alloc(0), userProperties: undefined, correlationData: undefined });
            if (code !== o.code) problems.push(`code ${code} (want ${o.code})`);
          } else if (o.kind === 'refused') {
            await waitFor(() => (ext.mqtt?.stats.refused ?? 0) === stats.refused + 1, 'the refusal counted');
          } else if (o.kind === 'dropped') {
            await waitFor(() => (ext.mqtt?.stats.dropped ?? 0) === stats.dropped + 1, 'the drop counted');
          }
        } catch (err) {
          problems.push((err as Error).message);
        }
        if (modelCalls(acc) - calls !== (c.served ? 1 : 0)) problems.push(`reached the model server ${modelCalls(acc) - calls}×`);
        if (problems.length > 0) wrong.push(`${c.what}: ${problems.join('; ')}`);
      }
      // A valid request after all of them proves delivery has caught up: nothing reached app-b's space.
      await dev.publishAsync(`${P}/infer/demo`, extBody(`ext/${version}/last`), { qos: 1 });
      await waitFor(() => got.some((g) => g.topic === `ext/${version}/last`), 'the last reply');
      assert.deepEqual(watched, [], "something was published into app-b's replies");
      assert.deepEqual(wrong, []);
      total += cases.length;
    });
  }

  it('over 100 cases in all; the process is alive, its heap bounded over repeated rounds, and MQTT and HTTP still serve', { timeout: 180_000 }, async (t) => {
    assert.ok(total >= 100, `${total} MQTT cases`);
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const round = async (): Promise<void> => {
      const a = await RawMqtt.login(port, { username: 'app-a', password: KEY_A });
      for (const [filter] of SUBSCRIPTIONS) await a.subscribe(filter);
      for (const c of LOGGED_IN.filter((x) => x.outcome.kind === 'dropped' || (x.outcome.kind === 'reply' && !x.served))) {
        const t = `${P}/app-a/replies/mem`;
        const before = a.deliveries.length;
        a.send(publishPacket(c.topic ?? `${P}/infer/demo`, typeof c.payload === 'string' ? c.payload.replace('$REPLY', t) : c.payload, { qos: 0 }));
        if (c.outcome.kind === 'reply') await a.until(() => a.deliveries.length > before);
      }
      a.close();
    };
    await round();
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 4; i++) await round();
    gc();
    const grown = process.memoryUsage().heapUsed - heap0;
    t.diagnostic(`heap growth over the repeated rounds: ${(grown / 1048576).toFixed(2)} MiB; rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
    assert.ok(grown < 16 * 1024 * 1024, `heap grew ${(grown / 1048576).toFixed(1)} MiB`);
    // Every path still serves a normal request.
    const a = await RawMqtt.login(port, { username: 'app-a', password: KEY_A });
    closers.push(() => a.close());
    await a.subscribe(`${P}/app-a/replies/#`);
    a.send(publishPacket(`${P}/infer/demo`, body().replace('$REPLY', `${P}/app-a/replies/final`), { qos: 1, id: 3 }));
    await a.until(() => a.deliveries.some((d) => d.topic === `${P}/app-a/replies/final`));
    const final = JSON.parse(a.deliveries.find((d) => d.topic === `${P}/app-a/replies/final`)?.payload.toString() ?? '{}') as Record<string, unknown>;
    assert.equal(final['error'], undefined);
    const ex = await connect(mosq.url, 5);
    closers.push(() => ex.endAsync());
    await ex.subscribeAsync('ext/final', { qos: 1 });
    const answered = new Promise<Record<string, unknown>>((resolve) => ex.once('message', (_t, raw) => resolve(JSON.parse(raw.toString()) as Record<string, unknown>)));
    await ex.publishAsync(`${P}/infer/demo`, extBody('ext/final'), { qos: 1 });
    assert.equal((await answered)['error'], undefined);
    assert.equal((await send(pool(gw.httpUrl), '/v2/models/demo/infer', { key: KEY_A, body: INFER_BODY })).status, 200);
  });
});
