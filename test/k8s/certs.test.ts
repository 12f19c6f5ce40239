import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { ensureWebhookCerts, issueAll, issueCa, issueServing, needsRenewal, serviceDnsNames, syncCaBundle } from '../../src/k8s/certs.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { NS, SECRETS } from './helpers.ts';
import type { Json } from './helpers.ts';

const DNS = serviceDnsNames('modelguard-webhook', NS);
const DAY = 86_400_000;
const servers: FakeApiServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function fake(): Promise<FakeApiServer> {
  const s = new FakeApiServer();
  await s.start();
  servers.push(s);
  return s;
}

test('issued certificates chain to the CA, name the Service, and are for serving TLS', () => {
  const c = issueAll({ dnsNames: DNS });
  const ca = new X509Certificate(c.caCert);
  const leaf = new X509Certificate(c.cert);
  assert.equal(ca.ca, true);
  assert.equal(leaf.ca, false);
  assert.ok(leaf.verify(ca.publicKey));
  assert.ok(leaf.checkIssued(ca));
  for (const name of DNS) assert.equal(leaf.checkHost(name, { subject: 'never' }), name);
  assert.equal(leaf.checkHost('evil.example.com'), undefined);
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  const days = (new Date(leaf.validTo).getTime() - Date.now()) / DAY;
  assert.ok(days > 360 && days < 366, `serving certificate valid ${days.toFixed(1)} days`);
  assert.equal(needsRenewal(c, { dnsNames: DNS }), undefined);
});

test('needsRenewal tells a CA problem from a serving-certificate problem', () => {
  const c = issueAll({ dnsNames: DNS });
  const other = issueAll({ dnsNames: DNS });
  assert.equal(needsRenewal({}, { dnsNames: DNS }), 'ca');
  assert.equal(needsRenewal({ ...c, caKey: other.caKey }, { dnsNames: DNS }), 'ca');
  assert.equal(needsRenewal({ ...c, cert: other.cert, key: other.key }, { dnsNames: DNS }), 'serving', 'signed by another CA');
  assert.equal(needsRenewal({ ...c, key: other.key }, { dnsNames: DNS }), 'serving', 'key does not match');
  assert.equal(needsRenewal(c, { dnsNames: [...DNS, 'modelguard-webhook.other.svc'] }), 'serving', 'another name');
  assert.equal(needsRenewal(c, { dnsNames: DNS, now: new Date(Date.now() + 340 * DAY) }), 'serving', 'within 30 days of expiry');
  const oldCa = issueCa(new Date(), 20);
  assert.equal(needsRenewal({ ...oldCa, ...issueServing(oldCa, { dnsNames: DNS }) }, { dnsNames: DNS }), 'ca');
  assert.equal(needsRenewal({ ...c, cert: 'garbage' }, { dnsNames: DNS }), 'serving');
});

test('the first replica creates the Secret; a restart and a second replica reuse it', async () => {
  const api = await fake();
  const kc = api.kubeConfig();
  const first = await ensureWebhookCerts({ kubeConfig: kc, namespace: NS });
  assert.equal(first.changed, true);
  const secret = api.get(SECRETS, 'modelguard-webhook-tls') as Json;
  assert.equal(secret.type, 'kubernetes.io/tls');
  assert.deepEqual(Object.keys(secret.data).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  const second = await ensureWebhookCerts({ kubeConfig: api.kubeConfig(), namespace: NS });
  assert.equal(second.changed, false);
  assert.equal(second.cert, first.cert);
  assert.equal(second.caCert, first.caCert);
  assert.equal(api.requests.filter((r) => r.method === 'POST' || r.method === 'PUT').length, 1, 'one write in all');
});

test('replicas racing on an empty namespace end with one certificate', async () => {
  const api = await fake();
  const results = await Promise.all([1, 2, 3].map(() => ensureWebhookCerts({ kubeConfig: api.kubeConfig(), namespace: NS })));
  const stored = Buffer.from((api.get(SECRETS, 'modelguard-webhook-tls') as Json).data['tls.crt'], 'base64').toString();
  for (const r of results) assert.equal(r.cert, stored);
  assert.ok(api.requests.some((r) => r.method === 'POST'));
});

test('an expiring serving certificate is re-issued under the same CA, so the caBundle stays valid', async () => {
  const api = await fake();
  const kc = api.kubeConfig();
  const first = await ensureWebhookCerts({ kubeConfig: kc, namespace: NS });
  const later = await ensureWebhookCerts({ kubeConfig: kc, namespace: NS, now: new Date(Date.now() + 340 * DAY) });
  assert.equal(later.changed, true);
  assert.equal(later.caCert, first.caCert);
  assert.notEqual(later.cert, first.cert);
  assert.ok(new X509Certificate(later.cert).verify(new X509Certificate(first.caCert).publicKey));
  const put = api.requests.find((r) => r.method === 'PUT' && r.path.endsWith('/secrets/modelguard-webhook-tls'))!;
  assert.ok((put.body as Json).metadata.resourceVersion !== undefined, 'replace carries the resourceVersion it read');
});

test('syncCaBundle patches only webhooks whose caBundle differs, and then nothing', async () => {
  const api = await fake();
  const c = issueAll({ dnsNames: DNS });
  const collection = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
  const hook = (name: string, caBundle?: string): object => ({
    name,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    clientConfig: { service: { name: 'modelguard-webhook', namespace: NS, path: '/inject', port: 443 }, ...(caBundle === undefined ? {} : { caBundle }) },
  });
  api.put(collection, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'modelguard-injector' },
    webhooks: [hook('pod.inject.modelguard.io'), hook('namespace.inject.modelguard.io', Buffer.from(c.caCert).toString('base64'))],
  });
  assert.equal(await syncCaBundle({ kubeConfig: api.kubeConfig(), caCert: c.caCert }), 1);
  const stored = api.get(collection, 'modelguard-injector') as Json;
  for (const w of stored.webhooks) assert.equal(Buffer.from(w.clientConfig.caBundle, 'base64').toString(), c.caCert);
  assert.equal(await syncCaBundle({ kubeConfig: api.kubeConfig(), caCert: c.caCert }), 0);
  const patch = api.requests.find((r) => r.method === 'PATCH')!;
  assert.equal(patch.contentType, 'application/json-patch+json');
  assert.equal((patch.body as Json)[0].op, 'test');
});
