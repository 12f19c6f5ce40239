import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeDirectory } from '../../src/k8s/nodes.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { fixture, waitFor } from './helpers.ts';
import type { Json } from './helpers.ts';

const api = new FakeApiServer();
const stops: (() => unknown)[] = [];
after(async () => {
  for (const s of stops) await s();
  await api.close();
});

test('the directory follows nodes as they change, KubeEdge addresses first; a throwing listener is reported, not fatal', async () => {
  await api.start();
  const cloud: Json = fixture('node-cloud.json');
  api.put('/api/v1/nodes', fixture('node-kubeedge.json'));
  api.put('/api/v1/nodes', cloud);
  const errors: string[] = [];
  const dir = new NodeDirectory({
    kubeConfig: api.kubeConfig(),
    labelSelector: 'node-role.kubernetes.io/edge',
    onChange: () => {
      throw new Error('listener broke');
    },
    onError: (e, what) => errors.push(`${what}: ${e.message}`),
  });
  stops.push(() => dir.stop());
  await dir.start();
  // The selector reaches the API server (the fake does not filter; a real one would).
  assert.ok(api.requests.some((r) => r.path === '/api/v1/nodes' && r.query.labelSelector === 'node-role.kubernetes.io/edge'));
  assert.equal(dir.addresses().get('edge-box-17')?.address, '192.168.31.17');
  assert.equal(dir.addresses().get('cloud-worker-2')?.source, 'InternalIP');
  assert.ok(errors.some((e) => e.includes('listener broke')));
  // KubeEdge learns the edge-reachable address later: the directory follows.
  api.put('/api/v1/nodes', { ...cloud, metadata: { ...cloud.metadata, annotations: { 'kubeedge.io/internal-ip': '192.168.40.2' } } });
  await waitFor(() => dir.addresses().get('cloud-worker-2')?.address === '192.168.40.2', 'annotation followed');
  api.remove('/api/v1/nodes', 'edge-box-17');
  await waitFor(() => !dir.addresses().has('edge-box-17'), 'deleted node gone');
});
