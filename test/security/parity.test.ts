/**
 * One identity path for every protocol: the same bad credentials get the same DESIGN.md code over
 * HTTP, gRPC and MQTT, and the model server sees none of these requests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@grpc/grpc-js';
import { startGateway, type Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, INFER_BODY, keyFor, pool, send, snapshotFor } from '../helpers/harness.ts';
import { call, failure, fp32Request, inferenceClient, md, trailer } from '../grpc/helpers.ts';
import { Caller, errorCode } from '../mqtt/helpers.ts';

const API = 'modelguard.io/v1alpha1';
const REVOKED = 'key-revoked-yesterday';

const setup = (withRevoked: boolean) =>
  snapshotFor({
    endpoints: [{ url: 'http://127.0.0.1:1', slots: 1 }],
    models: ['demo'],
    groups: [{ name: 'a' }, { name: 'b' }],
    gateway: { mqtt: { embedded: true } },
    extra: [
      { apiVersion: API, kind: 'Model', metadata: { name: 'private-demo' }, spec: { backend: 'accel', visibility: 'private', backendModel: 'demo' } },
      { apiVersion: API, kind: 'App', metadata: { name: 'owner' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha256Hex('key-owner') }, ...(withRevoked ? [{ sha256: sha256Hex(REVOKED) }] : [])], models: ['private-demo'] } },
    ],
  });

describe('the same refusals on HTTP, gRPC and MQTT', () => {
  let model: ModelServer;
  let gw: Gateway;
  let grpc: Client;
  let device: Caller;

  before(async () => {
    model = await accelerator({ slots: 1 });
    const snap = setup(true);
    const withModel = { ...snap, backends: { accel: { ...snap.backends['accel']!, endpoints: [{ url: model.url, slots: 1 }] } } };
    gw = await startGateway(withModel, { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', mqtt: 'mqtt://127.0.0.1:0' });
    // The key is revoked by a reload, as an operator would do it.
    const next = setup(false);
    gw.reload({ ...next, version: 2, backends: { accel: { ...next.backends['accel']!, endpoints: [{ url: model.url, slots: 1 }] } } });
    grpc = inferenceClient(gw.grpcUrl);
    device = await Caller.create(gw.mqttUrl!, 4); // anonymous connection: a key per request
  });

  after(async () => {
    await device.close();
    grpc.close();
    await gw.close();
    await model.close();
  });

  const cases: { what: string; key: string | undefined; model: string; code: string }[] = [
    { what: 'no key', key: undefined, model: 'demo', code: 'MG_UNAUTHENTICATED' },
    { what: 'empty key', key: '', model: 'demo', code: 'MG_UNAUTHENTICATED' },
    { what: 'whitespace key', key: '   ', model: 'demo', code: 'MG_UNAUTHENTICATED' },
    { what: 'revoked key', key: REVOKED, model: 'demo', code: 'MG_UNAUTHENTICATED' },
    { what: "another app's key for a private model", key: keyFor('b'), model: 'private-demo', code: 'MG_FORBIDDEN' },
  ];

  it('answers each case with its code on every protocol, and the model server sees none', async () => {
    const before = model.stats().requests;
    const http = pool(gw.httpUrl);
    const seen: string[] = [];
    for (const c of cases) {
      const h = await send(http, `/v2/models/${c.model}/infer`, { body: INFER_BODY, ...(c.key === undefined ? {} : { headers: { 'x-api-key': c.key } }) });
      const g = await failure(call(grpc, 'ModelInfer', fp32Request(c.model, [1, 2, 3, 4]), c.key === undefined ? md() : md({ 'x-api-key': c.key })));
      const m = await device.request(c.model, JSON.parse(INFER_BODY) as Record<string, unknown>, c.key === undefined ? {} : { key: c.key });
      seen.push(`${c.what}: http ${h.code} grpc ${trailer(g.trailers, 'x-modelguard-error')} mqtt ${errorCode(m)}`);
      assert.equal(h.code, c.code, `${c.what} over HTTP (${h.status})`);
      assert.equal(h.status, c.code === 'MG_FORBIDDEN' ? 403 : 401);
      assert.equal(trailer(g.trailers, 'x-modelguard-error'), c.code, `${c.what} over gRPC`);
      assert.equal(g.code, c.code === 'MG_FORBIDDEN' ? 7 : 16);
      assert.equal(errorCode(m), c.code, `${c.what} over MQTT`);
    }
    // Health probes reach the model server; inference requests must not.
    const inferences = model.requests().filter((r) => r.url.includes('/infer')).length;
    assert.equal(inferences, 0, `the model server saw inference requests: ${seen.join('; ')}`);
    assert.ok(model.stats().requests >= before);
    // And the right key works on all three.
    assert.equal((await send(http, '/v2/models/private-demo/infer', { key: 'key-owner', body: INFER_BODY })).status, 200);
    await http.close();
  });
});
