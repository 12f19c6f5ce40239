/**
 * Every protocol over the separate roles: gRPC into a proxy (typed tensors to an HTTP backend and to
 * a gRPC backend, pass-through with trailers), and MQTT devices straight into a broker, all reaching
 * the same broker queues under the asserted app.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import type { Client } from '@grpc/grpc-js';
import { brokerSnapshot, proxySnapshot } from '../../src/config/partition.ts';
import { startBroker, startProxy, type BrokerRole, type ProxyRole } from '../../src/compose/roles.ts';
import type { RequestRecord } from '../../src/core/events.ts';
import { ECHO_PATH } from '../../src/demo/grpc.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, keyFor, snapshotFor, waitFor } from '../helpers/harness.ts';
import { auth, call, failure, fp32Request, inferenceClient, rawCall, trailer } from '../grpc/helpers.ts';
import { Caller, errorCode } from '../mqtt/helpers.ts';

const API = 'modelguard.io/v1alpha1';
const TOKEN = 'proxy-token-protocols';

describe('gRPC through a proxy, MQTT into a broker', () => {
  let model: ModelServer;
  let broker: BrokerRole;
  let proxy: ProxyRole;
  let viaProxy: Client;
  let direct: Client;
  const atBroker: RequestRecord[] = [];

  before(async () => {
    model = await accelerator({ slots: 2, serviceTime: 2, grpcPort: 0 });
    const full = snapshotFor({
      endpoints: [{ url: model.url, slots: 2 }],
      groups: [{ name: 'a' }],
      gateway: { proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex(TOKEN) }] }], mqtt: { embedded: true } },
      extra: [
        { apiVersion: API, kind: 'Backend', metadata: { name: 'accel-grpc' }, spec: { protocol: 'kserve-v2-grpc', endpoints: [{ url: model.grpcUrl!, slots: 2 }], healthCheck: { interval: '200ms', timeout: '150ms' } } },
        { apiVersion: API, kind: 'Model', metadata: { name: 'demo-g' }, spec: { backend: 'accel-grpc', backendModel: 'demo' } },
      ],
    });
    broker = await startBroker(brokerSnapshot(full, 'n1'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0', mqtt: 'mqtt://127.0.0.1:0' });
    broker.pipeline.events.subscribe((r) => atBroker.push(r));
    proxy = await startProxy(proxySnapshot(full, []), { broker: broker.linkUrl, token: TOKEN, http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    await waitFor(() => proxy.pipeline.ready() && broker.pipeline.ready(), 'proxy and broker ready');
    viaProxy = inferenceClient(proxy.grpcUrl);
    direct = inferenceClient(new URL(model.grpcUrl!).host);
  });

  after(async () => {
    viaProxy.close();
    direct.close();
    await proxy.close();
    await broker.close();
    await model.close();
  });

  it('ModelInfer through the proxy equals a direct call, to an HTTP and to a gRPC backend', async () => {
    const ref = await call<{ outputs: unknown[] }>(direct, 'ModelInfer', fp32Request('demo', [1, 2, 3, 4]));
    for (const m of ['demo', 'demo-g']) {
      const before = atBroker.length;
      const r = await call<{ outputs: unknown[]; model_name: string }>(viaProxy, 'ModelInfer', fp32Request(m, [1, 2, 3, 4]), auth(keyFor('a')));
      assert.deepEqual(r.value.outputs, ref.value.outputs, m);
      assert.equal(trailer(r.initial, 'x-modelguard-served-by'), 'edge');
      await waitFor(() => atBroker.length > before, 'the broker record');
      const rec = atBroker.at(-1)!;
      assert.equal(rec.protocol, 'grpc', 'the broker counts the client protocol');
      assert.equal(rec.app, 'app-a');
      assert.equal(rec.model, m);
    }
  });

  it('refuses a bad key at the proxy with UNAUTHENTICATED and the error trailer', async () => {
    const before = atBroker.length;
    const f = await failure(call(viaProxy, 'ModelInfer', fp32Request('demo', [1, 2, 3, 4]), auth('nope')));
    assert.equal(f.code, 16);
    assert.equal(trailer(f.trailers, 'x-modelguard-error'), 'MG_UNAUTHENTICATED');
    assert.equal(atBroker.length, before);
  });

  it('passes other gRPC methods through proxy and broker with metadata and trailers', async () => {
    const payload = Buffer.from([9, 8, 7, 0, 255]);
    const m: Metadata = auth(keyFor('a'), { 'x-modelguard-model': 'demo-g', 'x-echo-color': 'green' });
    const r = await rawCall(proxy.grpcUrl, ECHO_PATH, payload, m);
    assert.deepEqual(r.value, payload);
    assert.equal(trailer(r.initial, 'x-echo-color'), 'green');
    assert.equal(trailer(r.trailers, 'x-trailer-color'), 'green');
  });

  it('refuses a pass-through to a model on an HTTP backend at the broker; the model server sees nothing', async () => {
    const f = await failure(rawCall(proxy.grpcUrl, ECHO_PATH, Buffer.from([1, 2]), auth(keyFor('a'), { 'x-modelguard-model': 'demo', 'x-request-id': 'pt-http-1' })));
    assert.equal(f.code, 3);
    assert.equal(trailer(f.trailers, 'x-modelguard-error'), 'MG_BAD_REQUEST');
    assert.match(f.details, /kserve-v2-grpc/);
    assert.equal(model.receivedIds().has('pt-http-1'), false);
  });

  it('serves an MQTT device at the broker as its app, with errors as replies', async () => {
    const dev = await Caller.create(broker.mqttUrl!, 4, { username: 'app-a', password: keyFor('a') });
    try {
      const before = atBroker.length;
      const ok = await dev.request('demo', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
      assert.ok(Array.isArray(ok.doc['outputs']), JSON.stringify(ok.doc));
      await waitFor(() => atBroker.length > before, 'the broker record');
      assert.equal(atBroker.at(-1)!.protocol, 'mqtt');
      assert.equal(atBroker.at(-1)!.app, 'app-a');
      const missing = await dev.request('nope', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
      assert.equal(errorCode(missing), 'MG_MODEL_NOT_FOUND');
    } finally {
      await dev.close();
    }
  });
});
