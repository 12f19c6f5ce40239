import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubernetesSource } from '../../src/k8s/source.ts';
import { LeaderElector } from '../../src/k8s/leader.ts';
import { NodeDirectory } from '../../src/k8s/nodes.ts';
import { ensureWebhookCerts, syncCaBundle } from '../../src/k8s/certs.ts';
import { proxyImage } from '../../src/k8s/self.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { CRD_BASE, NS, cr, fixture, waitFor } from './helpers.ts';
import type { Json } from './helpers.ts';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Call {
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
  verb: string;
}

/** The API request attributes RBAC authorizes, from a request's method and path. */
function attributes(method: string, path: string, query: Record<string, string>): Call {
  const s = path.split('/').filter((x) => x !== '');
  const rest = s[0] === 'api' ? s.slice(2) : s.slice(3);
  const group = s[0] === 'api' ? '' : s[1]!;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 2) {
    namespace = rest[1];
    rest.splice(0, 2);
  }
  const [res, name, sub] = rest;
  const verb = method === 'GET' ? (query.watch === 'true' ? 'watch' : name === undefined ? 'list' : 'get') : ({ POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } as Record<string, string>)[method]!;
  return { group, resource: sub === undefined ? res! : `${res}/${sub}`, ...(namespace === undefined ? {} : { namespace }), ...(name === undefined ? {} : { name }), verb };
}

const allows = (r: Rule, c: Call): boolean =>
  r.apiGroups.includes(c.group) && r.resources.includes(c.resource) && r.verbs.includes(c.verb) && (r.resourceNames === undefined || (c.name !== undefined && r.resourceNames.includes(c.name)));

const api = new FakeApiServer();
const stops: (() => unknown)[] = [];
after(async () => {
  for (const s of stops) await s();
  await api.close();
});

test('the controller\'s Role and ClusterRole allow every call src/k8s makes, and nothing it does not', async () => {
  const rendered: Json[] = parseAllDocuments(execFileSync('kubectl', ['kustomize', join(import.meta.dirname, '..', '..', 'deploy', 'base')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).map((d) => { const v: unknown = d.toJS(); return v; }) as Json[];
  const role = rendered.find((d) => d.kind === 'Role' && d.metadata.name === 'modelguard-controller');
  const clusterRole = rendered.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'modelguard-controller');
  const binding = rendered.find((d) => d.kind === 'RoleBinding');
  assert.equal(binding.subjects[0].name, 'modelguard-controller');
  for (const rule of [...role.rules, ...clusterRole.rules] as Rule[]) {
    assert.ok(!rule.verbs.includes('*') && !rule.resources.includes('*') && !rule.apiGroups.includes('*'), 'no wildcards');
  }

  // Exercise every Kubernetes call of the library, as the controller would.
  await api.start();
  const kc = api.kubeConfig();
  api.put(`${CRD_BASE}/apps`, cr('App', 'camera', { apiKeys: [{ secretRef: { name: 'k', key: 'key' } }] }));
  api.put('/api/v1/nodes', fixture('node-kubeedge.json'));
  api.put('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'modelguard-injector' }, webhooks: [{ name: 'pod.inject.modelguard.io', clientConfig: {} }] });
  const source = new KubernetesSource({ kubeConfig: kc, namespace: NS, onResources: () => undefined, debounceMs: 10 });
  stops.push(() => source.stop());
  await source.start();
  await source.writeStatus('App', 'camera', { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok' });
  const nodes = new NodeDirectory({ kubeConfig: kc });
  stops.push(() => nodes.stop());
  await nodes.start();
  assert.equal(nodes.addresses().get('edge-box-17')?.address, '192.168.31.17');
  const leader = new LeaderElector({ kubeConfig: kc, namespace: NS, identity: 'a', leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 30 });
  leader.start();
  await waitFor(() => leader.isLeader, 'leader');
  await waitFor(() => api.requests.filter((r) => r.method === 'PUT' && r.path.includes('/leases/')).length > 0, 'renewal');
  await leader.stop();
  const certs = await ensureWebhookCerts({ kubeConfig: kc, namespace: NS });
  await ensureWebhookCerts({ kubeConfig: kc, namespace: NS, now: new Date(Date.now() + 340 * 86_400_000) });
  await syncCaBundle({ kubeConfig: kc, caCert: certs.caCert });
  const self = rendered.find((d) => d.kind === 'Deployment' && d.metadata.name === 'modelguard-controller');
  api.put(`/api/v1/namespaces/${NS}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'modelguard-controller-5c9d-x2x7q', namespace: NS }, spec: self.spec.template.spec });
  assert.equal(await proxyImage({ kubeConfig: kc, namespace: NS, podName: 'modelguard-controller-5c9d-x2x7q' }), 'modelguard:0.1.0');
  assert.equal(await proxyImage({ kubeConfig: kc, namespace: NS, podName: 'any', override: 'registry.local/mg:1' }), 'registry.local/mg:1');
  await assert.rejects(proxyImage({ kubeConfig: kc, namespace: NS, podName: 'modelguard-controller-5c9d-x2x7q', container: 'nope' }), /MODELGUARD_PROXY_IMAGE/);
  await waitFor(() => api.openWatches() >= 7, 'watches open');

  const calls = api.requests.map((r) => attributes(r.method, r.path, r.query));
  const used = new Set<string>();
  for (const c of calls) {
    const namespaced = c.namespace === NS ? (role.rules as Rule[]) : [];
    const rules = [...namespaced.map((r, i) => ({ r, id: `role#${i}` })), ...(clusterRole.rules as Rule[]).map((r, i) => ({ r, id: `cluster#${i}` }))];
    const match = rules.find(({ r }) => allows(r, c));
    assert.ok(match, `not allowed by RBAC: ${c.verb} ${c.group || 'core'}/${c.resource}${c.name === undefined ? '' : ` ${c.name}`}${c.namespace === undefined ? '' : ` in ${c.namespace}`}`);
    used.add(`${match.id}:${c.verb}`);
  }
  const granted = [...(role.rules as Rule[]).flatMap((r, i) => r.verbs.map((v) => `role#${i}:${v}`)), ...(clusterRole.rules as Rule[]).flatMap((r, i) => r.verbs.map((v) => `cluster#${i}:${v}`))];
  assert.deepEqual(granted.filter((g) => !used.has(g)), [], 'every granted verb is used');
});
