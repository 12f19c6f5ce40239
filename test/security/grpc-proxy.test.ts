// The pass-through authorizer across the proxy → broker link: the permission a gRPC method needs
// travels with the call, so the broker checks `admin` again with its own configuration, as it
// does for HTTP admin paths. A proxy whose configuration grants more cannot lend it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brokerSnapshot, proxySnapshot } from '../../src/config/partition.ts';
import { startBroker, startProxy, type BrokerRole, type ProxyRole } from '../../src/compose/roles.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, keyFor, snapshotFor, waitFor } from '../helpers/harness.ts';
import { failure, md, rawCall, trailer } from '../grpc/helpers.ts';

const API = 'modelguard.io/v1alpha1';
const TOKEN = 'proxy-token-security';
const LOAD = '/inference.GRPCInferenceService/RepositoryModelLoad';
const loadDemo = Buffer.concat([Buffer.from([0x12, 4]), Buffer.from('demo')]);

function resources(model: ModelServer, adminOps: boolean): ReturnType<typeof snapshotFor> {
  return snapshotFor({
    endpoints: [{ url: model.url, slots: 2 }],
    groups: [{ name: 'a' }],
    gateway: { proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex(TOKEN) }] }] },
    extra: [
      { apiVersion: API, kind: 'Backend', metadata: { name: 'accel-grpc' }, spec: { protocol: 'kserve-v2-grpc', endpoints: [{ url: model.grpcUrl!, slots: 2 }], healthCheck: { interval: '200ms', timeout: '150ms' } } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'demo-g' }, spec: { backend: 'accel-grpc', backendModel: 'demo' } },
      { apiVersion: API, kind: 'App', metadata: { name: 'ops' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha256Hex('key-ops') }], operations: adminOps ? ['infer', 'metadata', 'admin'] : ['infer', 'metadata'] } },
    ],
  });
}

describe('gRPC pass-through permission across the link', () => {
  let model: ModelServer;
  let broker: BrokerRole;
  let proxy: ProxyRole;
  let lenient: ProxyRole;

  before(async () => {
    model = await accelerator({ slots: 2, serviceTime: 1, grpcPort: 0 });
    // The broker's configuration: ops may not administer. One proxy agrees, the other one does not.
    broker = await startBroker(brokerSnapshot(resources(model, false), 'n1'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
    proxy = await startProxy(proxySnapshot(resources(model, false), []), { broker: broker.linkUrl, token: TOKEN, http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    lenient = await startProxy(proxySnapshot(resources(model, true), []), { broker: broker.linkUrl, token: TOKEN, http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    await waitFor(() => proxy.pipeline.ready() && lenient.pipeline.ready() && broker.pipeline.ready(), 'proxies and broker ready');
  });

  after(async () => {
    await lenient.close();
    await proxy.close();
    await broker.close();
    await model.close();
  });

  it('refused at the proxy, and again at the broker when the proxy would let it through', async () => {
    const dispatched = (): number => broker.broker.status().groups.find((g) => g.name === 'a')?.dispatched ?? 0;
    const before = dispatched();
    const atProxy = await failure(rawCall(proxy.grpcUrl, LOAD, loadDemo, md({ authorization: `Bearer key-ops`, 'x-modelguard-model': 'demo-g' })));
    assert.equal(atProxy.code, 7);
    assert.equal(trailer(atProxy.trailers, 'x-modelguard-error'), 'MG_FORBIDDEN');
    const atBroker = await failure(rawCall(lenient.grpcUrl, LOAD, loadDemo, md({ authorization: `Bearer key-ops`, 'x-modelguard-model': 'demo-g' })));
    assert.equal(atBroker.code, 7, atBroker.details);
    assert.equal(trailer(atBroker.trailers, 'x-modelguard-error'), 'MG_FORBIDDEN');
    assert.match(atBroker.details, /admin/);
    // An ordinary app's pass-through still works over the link.
    const smuggled = await failure(rawCall(proxy.grpcUrl, '/inference.GRPCInferenceService/ModelStreamInfer', Buffer.concat([Buffer.from([0x0a, 6]), Buffer.from('secret')]), md({ authorization: `Bearer ${keyFor('a')}`, 'x-modelguard-model': 'demo-g' })));
    assert.equal(smuggled.code, 7);
    assert.equal(dispatched(), before);
  });
});
