/**
 * MQTT carries every bit JSON can carry, as HTTP and gRPC do, and refuses what it cannot. A KServe v2
 * request's JSON (Open Inference Protocol: tensor `data` as JSON numbers) with -0.0, subnormals,
 * 2^63−1 and 2^64−1 goes over MQTT (MQTT 5 responseTopic/correlationData, MQTT 3.1.1 replyTo/id in
 * the payload; the key in the payload, so ModelGuard takes its envelope out and re-encodes the body)
 * to an identity model behind an HTTP and a gRPC backend; the reply's tensors must be the values
 * sent, as a direct call to the model server returns them. Brokers: the embedded one (`up`) and
 * Debian's mosquitto; client: MQTT.js.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { Pool } from 'undici';
import { startGateway, type Gateway } from '../../src/compose/gateway.ts';
import { accelerator, keyFor, snapshotFor } from '../helpers/harness.ts';
import { JSON_SAFE, post, restBody } from '../conformance/helpers.ts';
import { connect, startMosquitto } from './helpers.ts';

const API = 'modelguard.io/v1alpha1';
const KEY = keyFor('g');
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** The text of output `name`'s `data` array in a KServe answer (its brackets balanced). */
function dataText(text: string, name: string): string | undefined {
  const at = text.indexOf(`"name":${JSON.stringify(name)}`);
  if (at < 0) return undefined;
  const start = text.indexOf('"data":', at) + '"data":'.length;
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '[') depth++;
    else if (text[i] === ']' && --depth === 0) return text.slice(start, i + 1);
  }
  return undefined;
}

interface RawReply {
  readonly text: string;
  readonly userProperties: Record<string, string | string[]> | undefined;
}

let seq = 0;

/** One request as raw payload text (so its numbers are exactly the bytes written); resolves with the reply's text. */
async function ask(client: MqttClient, version: 4 | 5, replyRoot: string, model: string, payloadFields: string, id: string): Promise<RawReply> {
  const topic = `${replyRoot}/${process.pid}/x${seq++}`;
  await client.subscribeAsync(topic, { qos: 1 });
  const reply = new Promise<RawReply>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no reply on ${topic}`)), 10_000);
    client.on('message', (got, raw, packet) => {
      if (got !== topic) return;
      clearTimeout(t);
      resolve({ text: raw.toString('utf8'), userProperties: packet.properties?.userProperties });
    });
  });
  const envelope = version === 4 ? `"replyTo":${JSON.stringify(topic)},"id":${id},` : `"id":${id},`;
  const payload = `{${envelope}"apiKey":${JSON.stringify(KEY)},${payloadFields}}`;
  client.publish(`modelguard/v1/infer/${model}`, payload, { qos: 1, ...(version === 5 ? { properties: { responseTopic: topic, correlationData: Buffer.from(topic) } } : {}) });
  const r = await reply;
  await client.unsubscribeAsync(topic);
  return r;
}

/** The `inputs` (and nothing else) of a KServe JSON request with every JSON-safe tensor. */
const SAFE_INPUTS = (() => {
  const text = restBody(JSON_SAFE, false, 'json').body.toString('utf8');
  const from = text.indexOf('"inputs":');
  const to = text.lastIndexOf(',"outputs":');
  return text.slice(from, to);
})();

function errorOf(text: string): { code?: string; message?: string } | undefined {
  return (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
}

describe('exact numbers and model names over MQTT', () => {
  let direct: Pool;
  /** The direct answer's text for the JSON-safe tensors. */
  let directText: string;
  const gateways: { name: string; gw: Gateway; callers: { version: 4 | 5; client: MqttClient; replyRoot: string }[] }[] = [];

  before(async () => {
    const demo = await accelerator({ slots: 4, grpcPort: 0, models: ['demo', { name: 'ident', kind: 'identity' }] });
    closers.push(() => demo.close());
    direct = new Pool(demo.url, { connections: 2 });
    closers.push(() => direct.close());
    const answer = await post(direct, '/v2/models/ident/infer', { body: Buffer.from(`{${SAFE_INPUTS}}`), headers: { 'content-type': 'application/json' } });
    assert.equal(answer.status, 200, answer.text);
    directText = answer.text;
    const mosquitto = await startMosquitto();
    closers.push(() => mosquitto.close());
    for (const [name, mqttCfg, url] of [
      ['embedded broker', { embedded: true }, 'mqtt://127.0.0.1:0'],
      ['mosquitto', { url: mosquitto.url }, undefined],
    ] as const) {
      const gw = await startGateway(
        snapshotFor({
          endpoints: [{ url: demo.url, slots: 4 }],
          models: ['demo'],
          groups: [{ name: 'g' }],
          backend: { healthCheck: { interval: '2s', timeout: '1s' } },
          gateway: { mqtt: mqttCfg },
          extra: [
            { apiVersion: API, kind: 'Backend', metadata: { name: 'accel-grpc' }, spec: { protocol: 'kserve-v2-grpc', endpoints: [{ url: demo.grpcUrl as string, slots: 4 }], timeout: '10s', healthCheck: { interval: '2s', timeout: '1s' } } },
            { apiVersion: API, kind: 'Model', metadata: { name: 'id-h' }, spec: { backend: 'accel', backendModel: 'ident' } },
            { apiVersion: API, kind: 'Model', metadata: { name: 'id-g' }, spec: { backend: 'accel-grpc', backendModel: 'ident' } },
          ],
        }),
        { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', ...(url === undefined ? {} : { mqtt: url }) },
      );
      closers.push(() => gw.close());
      const callers: { version: 4 | 5; client: MqttClient; replyRoot: string }[] = [];
      if (name === 'embedded broker') {
        // The embedded broker speaks MQTT 3.1.1; a device logs in as its app and reads its app's replies.
        const client = await connect(gw.mqttUrl as string, 4, { username: 'app-g', password: KEY });
        callers.push({ version: 4, client, replyRoot: 'modelguard/v1/app-g/replies' });
      } else {
        for (const version of [5, 4] as const) callers.push({ version, client: await connect(mosquitto.url, version), replyRoot: 'test/replies' });
      }
      for (const c of callers) closers.push(() => c.client.endAsync());
      gateways.push({ name, gw, callers });
    }
  });

  it('the direct answer is the reference: every value as sent (sanity of the identity model)', () => {
    for (const t of JSON_SAFE) assert.equal(dataText(directText, t.name.replace('INPUT', 'OUTPUT')), t.json, t.name);
  });

  for (const broker of ['embedded broker', 'mosquitto']) {
    for (const model of ['id-h', 'id-g']) {
      it(`${broker}, ${model === 'id-h' ? 'HTTP' : 'gRPC'} backend: -0.0, subnormals, 2^63−1, 2^64−1 come back exactly; model_name is the one asked for`, async () => {
        const g = gateways.find((x) => x.name === broker);
        assert.ok(g);
        for (const c of g.callers) {
          const r = await ask(c.client, c.version, c.replyRoot, model, SAFE_INPUTS, '"k1"');
          const doc = JSON.parse(r.text) as Record<string, unknown>;
          assert.equal(doc['error'], undefined, `MQTT ${c.version}: ${r.text}`);
          assert.equal(doc['model_name'], model, `MQTT ${c.version}: the alias, not the backend's "ident"`);
          assert.equal(doc['id'], 'k1');
          for (const t of JSON_SAFE) {
            const name = t.name.replace('INPUT', 'OUTPUT');
            assert.equal(dataText(r.text, name), t.json, `MQTT ${c.version} ${name}: ${r.text}`);
            assert.equal(dataText(r.text, name), dataText(directText, name), `MQTT ${c.version} ${name}: as the direct answer`);
          }
          // Independently of how the text is written: the bits.
          const f32 = JSON.parse(dataText(r.text, 'OUTPUT0') as string) as number[];
          assert.ok(Object.is(f32[0], -0), 'FP32 -0.0 is negative zero');
          const i64 = (dataText(r.text, 'OUTPUT2') as string).slice(1, -1).split(',').map((v) => BigInt(v));
          assert.deepEqual(i64, [2n ** 63n - 1n, -(2n ** 63n), -1n]);
          if (c.version === 4) assert.equal(doc['servedBy'], 'edge');
          else assert.equal(r.userProperties?.['x-modelguard-served-by'], 'edge');
        }
      });
    }

    it(`${broker}: a caller's numeric id beyond 2^53 comes back with every digit`, async () => {
      const g = gateways.find((x) => x.name === broker);
      assert.ok(g);
      for (const c of g.callers) {
        const r = await ask(c.client, c.version, c.replyRoot, 'id-h', SAFE_INPUTS, '18446744073709551615');
        assert.match(r.text, /"id":18446744073709551615[,}]/, `MQTT ${c.version}: ${r.text.slice(0, 200)}`);
        assert.equal(errorOf(r.text), undefined);
      }
    });

    it(`${broker}: binary-data outputs cannot be framed in an MQTT reply: refused with MG_BAD_REQUEST naming the parameter`, async () => {
      const g = gateways.find((x) => x.name === broker);
      assert.ok(g);
      for (const c of g.callers) {
        const all = await ask(c.client, c.version, c.replyRoot, 'id-h', `"parameters":{"binary_data_output":true},${SAFE_INPUTS}`, '"b1"');
        assert.equal(errorOf(all.text)?.code, 'MG_BAD_REQUEST', all.text);
        assert.match(errorOf(all.text)?.message ?? '', /binary_data_output/);
        // An error reply echoes a numeric id beyond 2^53 with every digit too.
        const one = await ask(c.client, c.version, c.replyRoot, 'id-g', `${SAFE_INPUTS},"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":true}}]`, '18446744073709551615');
        assert.equal(errorOf(one.text)?.code, 'MG_BAD_REQUEST', one.text);
        assert.match(one.text, /"id":18446744073709551615[,}]/);
        assert.match(errorOf(one.text)?.message ?? '', /outputs\[0\]\.parameters\.binary_data/);
        if (c.version === 5) assert.equal(one.userProperties?.['x-modelguard-error'], 'MG_BAD_REQUEST');
      }
    });

    it(`${broker}: an answer JSON cannot carry (FP32 +Inf from the gRPC backend) is refused with MG_BAD_REQUEST naming the tensor, not sent as null`, async () => {
      const g = gateways.find((x) => x.name === broker);
      assert.ok(g);
      for (const c of g.callers) {
        // 1e39 is a finite JSON number; as FP32 (the gRPC tensor) it is +Infinity.
        const r = await ask(c.client, c.version, c.replyRoot, 'id-g', '"inputs":[{"name":"INPUT0","shape":[1],"datatype":"FP32","data":[1e39]}]', '"i1"');
        assert.equal(errorOf(r.text)?.code, 'MG_BAD_REQUEST', r.text);
        assert.match(errorOf(r.text)?.message ?? '', /OUTPUT0.*Infinity/);
        assert.doesNotMatch(r.text, /null/);
      }
    });
  }
});
