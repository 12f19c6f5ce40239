/**
 * `modelguard controller --kubernetes` against the fake API server: CRDs become versioned snapshots
 * that a broker's agent receives over the node API, a change in the cluster reaches the node, the
 * replica takes the Lease, and the injection webhook serves with the certificate it kept in a Secret,
 * judging apps by the live configuration.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, test } from 'node:test';
import { runController } from '../../src/cli/roles.ts';
import { NodeAgent } from '../../src/controller/agent.ts';
import type { Snapshot } from '../../src/core/snapshot.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { CRD_BASE, LEASES, NS, SECRETS, cr, fixture, waitFor } from './helpers.ts';
import type { Json } from './helpers.ts';

let api: FakeApiServer;
let ctl: Awaited<ReturnType<typeof runController>>;
let agent: NodeAgent;
const seen: Snapshot[] = [];

before(async () => {
  api = new FakeApiServer();
  await api.start();
  api.put(`${CRD_BASE}/backends`, cr('Backend', 'edge', { endpoints: [{ url: 'http://10.0.0.5:8000', slots: 2 }] }));
  api.put(`${CRD_BASE}/models`, cr('Model', 'resnet50', { backend: 'edge' }));
  api.put(`${CRD_BASE}/apps`, cr('App', 'camera-line-1', { apiKeys: [{ sha256: 'a'.repeat(64) }] }));
  api.put('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'modelguard-injector' },
    webhooks: [{ name: 'pod.inject.modelguard.io', clientConfig: {} }],
  });
  process.env['MODELGUARD_PROXY_IMAGE'] = 'registry.test/modelguard:1';
  ctl = await runController({ kubernetes: { namespace: NS, kubeConfig: api.kubeConfig() }, admin: '127.0.0.1:0', webhook: '127.0.0.1:0', heartbeatMs: 200 });
  agent = new NodeAgent({ controller: ctl.url, name: 'edge-node-1', role: 'broker', waitMs: 2000, log: () => undefined }, (s) => void seen.push(s));
  seen.push(await agent.first());
  agent.run();
});

after(async () => {
  await agent.close();
  await ctl.stop();
  await api.close();
  delete process.env['MODELGUARD_PROXY_IMAGE'];
});

test('the CRDs compile into the snapshot a broker receives over the node API', () => {
  const s = seen[0]!;
  assert.equal(s.version, 1);
  assert.deepEqual(Object.keys(s.backends), ['edge']);
  assert.equal(s.backends['edge']!.endpoints[0]!.url, 'http://10.0.0.5:8000');
  assert.deepEqual(Object.keys(s.models), ['resnet50']);
  assert.deepEqual(Object.keys(s.apps), ['camera-line-1']);
});

test('a change in the cluster reaches the node as a new version; the replica leads and writes Accepted', async () => {
  api.put(`${CRD_BASE}/backends`, cr('Backend', 'edge', { endpoints: [{ url: 'http://10.0.0.5:8000', slots: 4 }] }));
  await waitFor(() => seen.at(-1)!.backends['edge']?.endpoints[0]?.slots === 4, 'the node to get the new slots', 10_000);
  assert.ok(seen.at(-1)!.version > 1);
  await waitFor(() => api.get(LEASES, 'modelguard-controller') !== undefined, 'the Lease', 10_000);
  await waitFor(() => ((api.get(`${CRD_BASE}/backends`, 'edge')?.status as Json)?.conditions?.[0]?.status as string) === 'True', 'Accepted written', 10_000);
});

test('the webhook serves with the Secret-kept certificate and judges apps by the live configuration', async () => {
  const stored = api.get(SECRETS, 'modelguard-webhook-tls');
  assert.ok(stored, 'the certificate Secret was created');
  const ca = Buffer.from(((stored as Json).data as Record<string, string>)['ca.crt']!, 'base64').toString('utf8');
  const post = (body: unknown): Promise<Json> =>
    new Promise((resolve, reject) => {
      const u = new URL(ctl.webhookUrl!);
      const req = request({ host: u.hostname, port: u.port, path: '/inject', method: 'POST', ca, servername: `modelguard-webhook.${NS}.svc`, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  const review = fixture<Json>('admissionreview-pod-create.json');
  const ok = await post(review);
  assert.equal(ok.response.allowed, true);
  const patch = JSON.parse(Buffer.from(ok.response.patch as string, 'base64').toString('utf8')) as Json[];
  const proxy = patch.find((p) => p.path === '/spec/containers/-')!.value;
  assert.equal(proxy.image, 'registry.test/modelguard:1');
  (review.request.object.metadata.annotations as Record<string, string>)['modelguard.io/app'] = 'nobody';
  const denied = await post(review);
  assert.equal(denied.response.allowed, false);
  assert.match(denied.response.status.message as string, /"nobody" names no ModelGuard App/);
});
