import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { LoadedConfig } from '../../src/config/index.ts';
import { KubernetesConfig } from '../../src/k8s/config-loop.ts';
import { LeaderElector } from '../../src/k8s/leader.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { CRD_BASE, NS, SECRETS, cr, secret, waitFor } from './helpers.ts';
import type { Json } from './helpers.ts';

const servers: FakeApiServer[] = [];
const stops: (() => unknown)[] = [];
after(async () => {
  for (const s of stops) await s();
  for (const s of servers) await s.close();
});

async function cluster(): Promise<FakeApiServer> {
  const api = new FakeApiServer();
  await api.start();
  servers.push(api);
  api.put(`${CRD_BASE}/backends`, cr('Backend', 'edge', { endpoints: [{ url: 'http://10.0.0.5:8000', slots: 2 }] }));
  api.put(`${CRD_BASE}/models`, cr('Model', 'resnet50', { backend: 'edge' }));
  api.put(`${CRD_BASE}/servicegroups`, cr('ServiceGroup', 'safety', { priority: 10 }));
  api.put(`${CRD_BASE}/apps`, cr('App', 'camera', { serviceGroup: 'safety', apiKeys: [{ secretRef: { name: 'camera-key', key: 'key' } }] }));
  api.put(SECRETS, secret('camera-key', { key: 'mg_k1' }));
  return api;
}

const condition = (api: FakeApiServer, plural: string, name: string): Json => (api.get(`${CRD_BASE}/${plural}`, name)?.status as Json)?.conditions?.[0];

test('valid resources become a snapshot and every resource is marked Accepted; a broken one is Invalid with its hint and the last good snapshot stays', async () => {
  const api = await cluster();
  const configs: LoadedConfig[] = [];
  const rejected: unknown[] = [];
  const k = new KubernetesConfig({ kubeConfig: api.kubeConfig(), namespace: NS, onConfig: (c) => configs.push(c), onRejected: (e) => rejected.push(e), debounceMs: 10, initialBackoffMs: 10 });
  stops.push(() => k.stop());
  await k.start();
  assert.equal(configs.length, 1);
  assert.equal(configs[0]!.snapshot.version, 1);
  assert.equal(k.knownApp('camera'), true);
  assert.equal(k.knownApp('nobody'), false);
  const app = configs[0]!.resources.find((r) => r.kind === 'App')!;
  assert.deepEqual((app.spec as { apiKeys: unknown[] }).apiKeys, [{ sha256: createHash('sha256').update('mg_k1').digest('hex') }]);
  await waitFor(() => condition(api, 'backends', 'edge')?.status === 'True' && condition(api, 'apps', 'camera')?.status === 'True', 'Accepted everywhere');
  assert.equal(condition(api, 'models', 'resnet50').reason, 'Accepted');

  api.put(`${CRD_BASE}/backends`, cr('Backend', 'edge', { endpoints: [{ url: 'http://10.0.0.5:8000' }], timeout: '30' }));
  await waitFor(() => condition(api, 'backends', 'edge')?.reason === 'Invalid', 'Invalid written');
  const invalid = condition(api, 'backends', 'edge');
  assert.equal(invalid.status, 'False');
  assert.match(invalid.message, /spec\.timeout: expected a duration.*hint: add a unit: "30s"/);
  assert.equal(invalid.observedGeneration, 2);
  await waitFor(() => condition(api, 'models', 'resnet50')?.reason === 'Blocked', 'others Blocked');
  assert.equal(configs.length, 1, 'no new configuration from an invalid set');
  assert.equal(k.current?.snapshot.version, 1, 'the last good one stays');
  assert.equal(rejected.length, 1);

  api.put(`${CRD_BASE}/backends`, cr('Backend', 'edge', { endpoints: [{ url: 'http://10.0.0.5:8000' }], timeout: '30s' }));
  await waitFor(() => configs.length === 2, 'fixed');
  assert.equal(configs[1]!.snapshot.version, 2);
  await waitFor(() => condition(api, 'backends', 'edge')?.status === 'True' && condition(api, 'models', 'resnet50')?.status === 'True', 'Accepted again');
  await k.settled();
});

test('only the leader writes status; a replica that becomes leader writes it at once', async () => {
  const api = await cluster();
  api.put(`${CRD_BASE}/models`, cr('Model', 'broken', { backend: 'missing' }));
  const a = new LeaderElector({ kubeConfig: api.kubeConfig(), namespace: NS, identity: 'a', leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 30 });
  const b = new LeaderElector({ kubeConfig: api.kubeConfig(), namespace: NS, identity: 'b', leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 30 });
  stops.push(() => a.stop(), () => b.stop());
  a.start();
  await waitFor(() => a.isLeader, 'a leads');
  b.start();
  // b's replica runs first, while a leads but has no configuration loop running: nothing is written.
  const kb = new KubernetesConfig({ kubeConfig: api.kubeConfig(), namespace: NS, onConfig: () => undefined, leader: b, debounceMs: 10 });
  stops.push(() => kb.stop());
  await kb.start();
  assert.equal(kb.conditions.get('Model/broken')?.reason, 'Invalid');
  assert.match(kb.conditions.get('Model/broken')!.message, /Backend "missing" does not exist/);
  await kb.settled();
  assert.equal(api.requests.filter((r) => r.path.endsWith('/status')).length, 0, 'a follower writes no status');
  await a.stop(); // a hands over
  await waitFor(() => b.isLeader, 'b leads');
  await waitFor(() => condition(api, 'models', 'broken')?.reason === 'Invalid', 'new leader writes status');
  assert.equal(condition(api, 'backends', 'edge')?.reason, 'Blocked');
});

test('a throwing onConfig is reported and the loop goes on', async () => {
  const api = await cluster();
  const errors: string[] = [];
  let calls = 0;
  const k = new KubernetesConfig({
    kubeConfig: api.kubeConfig(),
    namespace: NS,
    onConfig: () => {
      calls++;
      throw new Error('receiver failed');
    },
    onError: (e, what) => errors.push(`${what}: ${e.message}`),
    debounceMs: 10,
  });
  stops.push(() => k.stop());
  await k.start();
  assert.deepEqual(errors, ['onConfig: receiver failed']);
  api.put(`${CRD_BASE}/servicegroups`, cr('ServiceGroup', 'safety', { priority: 11 }));
  await waitFor(() => calls === 2, 'second configuration');
  assert.equal(k.current?.snapshot.version, 2);
});
