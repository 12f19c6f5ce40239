/**
 * The binary-data extension and raw gRPC contents across the separate roles (app → proxy → broker →
 * backend): the proxy → broker link carries the framing headers and bytes unchanged, so answers are
 * the identity model's bytes, as in the all-in-one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import type { Client } from '@grpc/grpc-js';
import { brokerSnapshot, proxySnapshot } from '../../src/config/partition.ts';
import { startBroker, startProxy, type BrokerRole, type ProxyRole } from '../../src/compose/roles.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, keyFor, snapshotFor, waitFor } from '../helpers/harness.ts';
import { auth, call, inferenceClient } from '../grpc/helpers.ts';
import { BINARY_ONLY, post, restBody } from './helpers.ts';

const API = 'modelguard.io/v1alpha1';
const TOKEN = 'proxy-token-conformance';

describe('binary tensors through a proxy and a broker', () => {
  let model: ModelServer;
  let broker: BrokerRole;
  let proxy: ProxyRole;
  let http: Pool;
  let grpc: Client;

  before(async () => {
    model = await accelerator({ slots: 2, grpcPort: 0, models: [{ name: 'ident', kind: 'identity' }] });
    const full = snapshotFor({
      endpoints: [{ url: model.url, slots: 2 }],
      models: [],
      groups: [{ name: 'a' }],
      gateway: { proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex(TOKEN) }] }] },
      extra: [
        { apiVersion: API, kind: 'Backend', metadata: { name: 'accel-grpc' }, spec: { protocol: 'kserve-v2-grpc', endpoints: [{ url: model.grpcUrl as string, slots: 2 }] } },
        { apiVersion: API, kind: 'Model', metadata: { name: 'id-h' }, spec: { backend: 'accel', backendModel: 'ident' } },
        { apiVersion: API, kind: 'Model', metadata: { name: 'id-g' }, spec: { backend: 'accel-grpc', backendModel: 'ident' } },
      ],
    });
    broker = await startBroker(brokerSnapshot(full, 'n1'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
    proxy = await startProxy(proxySnapshot(full, []), { broker: broker.linkUrl, token: TOKEN, http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    await waitFor(() => proxy.pipeline.ready() && broker.pipeline.ready(), 'proxy and broker ready');
    http = new Pool(proxy.httpUrl, { connections: 2 });
    grpc = inferenceClient(proxy.grpcUrl);
  });

  after(async () => {
    grpc.close();
    await http.close();
    await proxy.close();
    await broker.close();
    await model.close();
  });

  for (const m of ['id-h', 'id-g']) {
    it(`HTTP binary in, binary out through the proxy to ${m}: the input's bytes, framed`, async () => {
      const a = await post(http, `/v2/models/${m}/infer`, restBody(BINARY_ONLY, true, 'binary'), keyFor('a'));
      assert.equal(a.status, 200, a.text);
      assert.ok(a.headers['inference-header-content-length']);
      for (const t of BINARY_ONLY) assert.deepEqual(a.binary.get(t.name.replace('INPUT', 'OUTPUT')), t.bytes, t.name);
      // Named as asked (the backend's is `ident`); the header length is the renamed header's.
      assert.equal(a.header['model_name'], m);
      assert.equal(Number(a.headers['inference-header-content-length']), Buffer.byteLength(a.text));
    });

    it(`gRPC raw contents through the proxy to ${m}: raw_output_contents byte for byte`, async () => {
      const req = { model_name: m, inputs: BINARY_ONLY.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })), raw_input_contents: BINARY_ONLY.map((t) => t.bytes) };
      const r = await call<{ raw_output_contents: Buffer[]; model_name: string }>(grpc, 'ModelInfer', req, auth(keyFor('a')));
      assert.deepEqual(r.value.raw_output_contents.map((b) => Buffer.from(b)), BINARY_ONLY.map((t) => t.bytes));
      assert.equal(r.value.model_name, m);
    });
  }
});
