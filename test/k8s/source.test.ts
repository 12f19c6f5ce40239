import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { compileResources } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/index.ts';
import { KubernetesSource } from '../../src/k8s/source.ts';
import type { ResourceDoc, ResourceProblem } from '../../src/k8s/resources.ts';
import { conditionsFor } from '../../src/k8s/status.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { CRD_BASE, NS, SECRETS, cr, secret, waitFor } from './helpers.ts';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const api = new FakeApiServer();
let source: KubernetesSource;
const calls: { docs: readonly ResourceDoc[]; problems: readonly ResourceProblem[] }[] = [];
const errors: string[] = [];
const last = (): { docs: readonly ResourceDoc[]; problems: readonly ResourceProblem[] } => calls[calls.length - 1]!;
const doc = (kind: string, name: string): ResourceDoc | undefined => last().docs.find((d) => d.kind === kind && d.metadata.name === name);

before(async () => {
  await api.start();
  api.put(`${CRD_BASE}/backends`, cr('Backend', 'edge', { endpoints: [{ url: 'http://10.0.0.5:8000', slots: 2 }] }));
  api.put(`${CRD_BASE}/models`, cr('Model', 'resnet50', { backend: 'edge', visibility: 'private' }));
  api.put(`${CRD_BASE}/servicegroups`, cr('ServiceGroup', 'safety', { priority: 10, weight: 3 }));
  api.put(`${CRD_BASE}/apps`, cr('App', 'camera', { serviceGroup: 'safety', models: ['resnet50'], apiKeys: [{ secretRef: { name: 'camera-key', key: 'key' } }, { sha256: sha('inline') }] }));
  api.put(SECRETS, secret('camera-key', { key: 'mg_secret_1\n' }));
  api.put(SECRETS, secret('unrelated', { x: 'y' }));
  source = new KubernetesSource({
    kubeConfig: api.kubeConfig(),
    namespace: NS,
    onResources: (docs, problems) => void calls.push({ docs, problems }),
    onError: (err, what) => void errors.push(`${what}: ${err.message}`),
    debounceMs: 20,
    initialBackoffMs: 20,
    maxBackoffMs: 200,
  });
  await source.start();
});

after(async () => {
  source.stop();
  await api.close();
});

test('the first set is every resource as a plain document, Secret keys replaced by their sha256, and it compiles', () => {
  assert.equal(calls.length, 1);
  assert.deepEqual(last().docs.map((d) => `${d.kind}/${d.metadata.name}`), ['Backend/edge', 'Model/resnet50', 'ServiceGroup/safety', 'App/camera']);
  const app = doc('App', 'camera')!;
  // Kubernetes metadata (namespace, resourceVersion, kubectl's annotation) is dropped: the strict schema takes the rest.
  assert.deepEqual(app.metadata, { name: 'camera' });
  assert.deepEqual((app.spec as { apiKeys: unknown[] }).apiKeys, [{ sha256: sha('mg_secret_1') }, { sha256: sha('inline') }]);
  const loaded = compileResources(last().docs as unknown as ResourceInput[], { version: 1, sources: ['kubernetes'] });
  assert.equal(loaded.snapshot.version, 1);
  assert.deepEqual(last().problems, []);
});

test('a change arrives through the watch; a status write alone does not hand the set over again', async () => {
  const before = calls.length;
  const wrote = await source.writeStatus('Model', 'resnet50', { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'part of the current snapshot' });
  assert.equal(wrote, true);
  await waitFor(() => (source.reflector('Model')?.items.get('resnet50')?.status as { conditions?: unknown[] } | undefined)?.conditions?.length === 1, 'status event');
  api.put(`${CRD_BASE}/servicegroups`, cr('ServiceGroup', 'safety', { priority: 10, weight: 5 }));
  await waitFor(() => calls.length > before, 'changed set');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(calls.length, before + 1, 'exactly one hand-over: the status write changed no document');
  assert.equal((doc('ServiceGroup', 'safety')!.spec as { weight: number }).weight, 5);
});

test('writeStatus skips a write that changes nothing and keeps lastTransitionTime while the status holds', async () => {
  const writes = (): number => api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/backends/edge/status')).length;
  const cond = { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'part of the current snapshot' } as const;
  assert.equal(await source.writeStatus('Backend', 'edge', cond), true);
  await waitFor(() => source.reflector('Backend')?.items.get('edge')?.status !== undefined, 'status stored');
  assert.equal(await source.writeStatus('Backend', 'edge', cond), false);
  assert.equal(writes(), 1);
  const stored = api.get(`${CRD_BASE}/backends`, 'edge')!.status as { observedGeneration: number; conditions: { lastTransitionTime: string; status: string; reason: string; message: string; observedGeneration: number }[] };
  assert.equal(stored.observedGeneration, 1);
  assert.equal(stored.conditions[0]!.status, 'True');
  const firstTime = stored.conditions[0]!.lastTransitionTime;
  assert.match(firstTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  // The request was a JSON Patch on the status subresource.
  const req = api.requests.find((r) => r.method === 'PATCH' && r.path.endsWith('/backends/edge/status'))!;
  assert.equal(req.contentType, 'application/json-patch+json');
  const flipped = await source.writeStatus('Backend', 'edge', { type: 'Accepted', status: 'False', reason: 'Invalid', message: 'spec.timeout: bad' });
  assert.equal(flipped, true);
  const after = api.get(`${CRD_BASE}/backends`, 'edge')!.status as typeof stored;
  assert.equal(after.conditions[0]!.reason, 'Invalid');
  assert.equal(after.conditions.length, 1);
});

test('a dropped watch reconnects from its resourceVersion without relisting, and changes made meanwhile arrive', async () => {
  const r = source.reflector('Backend')!;
  const lists = r.stats.lists;
  const reconnects = r.stats.reconnects;
  await waitFor(() => api.openWatches(`${CRD_BASE}/backends`) === 1, 'backend watch open');
  api.dropWatches();
  api.put(`${CRD_BASE}/backends`, cr('Backend', 'edge', { endpoints: [{ url: 'http://10.0.0.6:8000', slots: 2 }] }));
  await waitFor(() => r.stats.reconnects > reconnects, 'reconnect');
  await waitFor(() => (doc('Backend', 'edge')?.spec as { endpoints: { url: string }[] }).endpoints[0]!.url === 'http://10.0.0.6:8000', 'change after reconnect');
  assert.equal(r.stats.lists, lists, 'no relist needed');
  const watchReqs = api.requests.filter((q) => q.path === `${CRD_BASE}/backends` && q.query.watch === 'true');
  assert.notEqual(watchReqs[watchReqs.length - 1]!.query.resourceVersion, watchReqs[0]!.query.resourceVersion, 'resumed from a later resourceVersion');
});

test('"410 Gone" on an open watch relists, and a deletion made during the gap is seen', async () => {
  const r = source.reflector('Model')!;
  const lists = r.stats.lists;
  await waitFor(() => api.openWatches(`${CRD_BASE}/models`) === 1, 'model watch open');
  api.dropWatches();
  api.remove(`${CRD_BASE}/models`, 'resnet50');
  api.put(`${CRD_BASE}/models`, cr('Model', 'yolo', { backend: 'edge' }));
  api.compact(); // the reconnecting watch's resourceVersion is now too old
  await waitFor(() => r.stats.relistsAfterGone > 0 && r.stats.lists > lists, 'relist after 410');
  await waitFor(() => doc('Model', 'yolo') !== undefined && doc('Model', 'resnet50') === undefined, 'state after relist');
  // An ERROR 410 event on an open watch does the same.
  await waitFor(() => api.openWatches(`${CRD_BASE}/models`) === 1, 'model watch reopened');
  const gone = r.stats.relistsAfterGone;
  api.goneOnWatches(`${CRD_BASE}/models`);
  await waitFor(() => r.stats.relistsAfterGone > gone, 'relist after ERROR 410 event');
});

test('an HTTP 410 answer to a watch request relists too', async () => {
  const r = source.reflector('Gateway')!;
  const gone = r.stats.relistsAfterGone;
  const lists = r.stats.lists;
  await waitFor(() => api.openWatches(`${CRD_BASE}/gateways`) === 1, 'gateway watch open');
  api.failNext('GET', `${CRD_BASE}/gateways`, 410, 1);
  api.dropWatches();
  await waitFor(() => r.stats.relistsAfterGone > gone && r.stats.lists > lists, 'relist after HTTP 410');
  await waitFor(() => api.openWatches(`${CRD_BASE}/gateways`) === 1, 'watching again');
});

test('a Secret change re-hashes the key; a missing Secret is a problem naming the App with a fix', async () => {
  api.put(SECRETS, secret('camera-key', { key: 'mg_secret_2' }));
  await waitFor(() => (doc('App', 'camera')?.spec as { apiKeys: { sha256?: string }[] }).apiKeys[0]!.sha256 === sha('mg_secret_2'), 'rotated key');
  api.remove(SECRETS, 'camera-key');
  await waitFor(() => last().problems.length === 1, 'problem reported');
  const p = last().problems[0]!;
  assert.equal(p.kind, 'App');
  assert.equal(p.name, 'camera');
  assert.match(p.message, /Secret "camera-key" has no key "key"/);
  assert.match(p.hint!, /kubectl create secret generic camera-key/);
  let error: unknown;
  try {
    compileResources(last().docs as unknown as ResourceInput[], { version: 2 });
  } catch (e) {
    error = e;
  }
  const conditions = conditionsFor(last().docs, last().problems, error);
  assert.equal(conditions.get('App/camera')?.reason, 'Invalid');
  assert.match(conditions.get('App/camera')!.message, /camera-key/);
  assert.equal(conditions.get('Backend/edge')?.reason, error === undefined ? 'Blocked' : conditions.get('Backend/edge')?.reason);
  assert.equal(conditions.get('Backend/edge')?.status, 'False', 'nothing is Accepted while the set is held back');
});

test('list failures are retried with backoff and reported, and the source still syncs', async () => {
  const api2 = new FakeApiServer();
  await api2.start();
  api2.put(`${CRD_BASE}/gateways`, cr('Gateway', 'default', { auth: 'none' }));
  api2.failNext('GET', '/gateways', 500, 2);
  const seen: ResourceDoc[][] = [];
  const errs: string[] = [];
  const s = new KubernetesSource({ kubeConfig: api2.kubeConfig(), namespace: NS, onResources: (d) => void seen.push([...d]), onError: (e, what) => void errs.push(what), debounceMs: 10, initialBackoffMs: 10 });
  try {
    await s.start();
    assert.equal(seen.length, 1);
    assert.equal(seen[0]![0]!.kind, 'Gateway');
    assert.equal(errs.filter((w) => w.startsWith('list') && w.includes('gateways')).length, 2);
  } finally {
    s.stop();
    await api2.close();
  }
});

test('the compiled snapshot of an invalid set names the resource, and conditionsFor marks only it Invalid', () => {
  const docs = [
    { apiVersion: 'modelguard.io/v1alpha1', kind: 'Backend', metadata: { name: 'b' }, spec: { endpoints: [{ url: 'http://x:1' }], timeout: '30' } },
    { apiVersion: 'modelguard.io/v1alpha1', kind: 'ServiceGroup', metadata: { name: 'g' }, spec: {} },
  ] as unknown as ResourceDoc[];
  let error: unknown;
  try {
    compileResources(docs as unknown as ResourceInput[], { version: 1 });
  } catch (e) {
    error = e;
  }
  const c = conditionsFor(docs, [], error);
  assert.equal(c.get('Backend/b')?.reason, 'Invalid');
  assert.match(c.get('Backend/b')!.message, /spec\.timeout.*hint: add a unit/);
  assert.equal(c.get('ServiceGroup/g')?.reason, 'Blocked');
  assert.equal(conditionsFor(docs.slice(1), [], undefined).get('ServiceGroup/g')?.status, 'True');
  assert.ok(errors.length >= 0);
});

test('stop() before the first list rejects start() instead of leaving it pending', async () => {
  const api3 = new FakeApiServer();
  await api3.start();
  api3.failNext('GET', '/namespaces/', 503, 1_000_000);
  const s = new KubernetesSource({ kubeConfig: api3.kubeConfig(), namespace: NS, onResources: () => undefined, initialBackoffMs: 10 });
  try {
    const started = s.start();
    await waitFor(() => api3.requests.length >= 6, 'retries');
    s.stop();
    await assert.rejects(started, /stopped before the first list/);
  } finally {
    await api3.close();
  }
});

test('a steady stream of changes is still handed over, at most about a second after it began', async () => {
  const api4 = new FakeApiServer();
  await api4.start();
  api4.put(`${CRD_BASE}/servicegroups`, cr('ServiceGroup', 'g', { weight: 1 }));
  const seen: number[] = [];
  const s = new KubernetesSource({ kubeConfig: api4.kubeConfig(), namespace: NS, onResources: () => void seen.push(performance.now()), debounceMs: 100 });
  try {
    await s.start();
    const began = performance.now();
    let weight = 1;
    // A change every 20 ms, quieter than the debounce never: a plain debounce would wait for the end.
    while (performance.now() - began < 2500 && seen.length < 2) {
      api4.put(`${CRD_BASE}/servicegroups`, cr('ServiceGroup', 'g', { weight: ++weight }));
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(seen.length >= 2, 'handed over during the stream');
    assert.ok(seen[1]! - began < 2000, `first hand-over ${(seen[1]! - began).toFixed(0)} ms into the stream`);
  } finally {
    s.stop();
    await api4.close();
  }
});

test('a list that never answers times out and is retried', async () => {
  const api5 = new FakeApiServer();
  await api5.start();
  api5.put(`${CRD_BASE}/models`, cr('Model', 'm', { backend: 'b' }));
  api5.failNext('GET', `${CRD_BASE}/models`, 0, 1);
  const errs: string[] = [];
  const { Reflector } = await import('../../src/k8s/reflector.ts');
  const { CustomObjectsApi } = await import('@kubernetes/client-node');
  const custom = api5.kubeConfig().makeApiClient(CustomObjectsApi);
  const r = new Reflector({
    kubeConfig: api5.kubeConfig(),
    path: `${CRD_BASE}/models`,
    list: async () => {
      const l = (await custom.listNamespacedCustomObject({ group: 'modelguard.io', version: 'v1alpha1', namespace: NS, plural: 'models' })) as { metadata: { resourceVersion: string }; items: [] };
      return { resourceVersion: l.metadata.resourceVersion, items: l.items };
    },
    onChange: () => undefined,
    onError: (e) => void errs.push(e.message),
    listTimeoutMs: 200,
    initialBackoffMs: 10,
  });
  try {
    await r.start();
    assert.ok(r.items.has('m'));
    assert.ok(errs.some((e) => /no answer in 200 ms/.test(e)));
  } finally {
    r.stop();
    await api5.close();
  }
});
