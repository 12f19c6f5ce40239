import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebhookTls } from '../../src/k8s/webhook-tls.ts';
import { LeaderElector } from '../../src/k8s/leader.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { NS, waitFor } from './helpers.ts';
import type { Json } from './helpers.ts';

const CONFIGS = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const api = new FakeApiServer();
const stops: (() => unknown)[] = [];
after(async () => {
  for (const s of stops) await s();
  await api.close();
});

const bundle = (): string | undefined => {
  const c = api.get(CONFIGS, 'modelguard-injector') as Json;
  const b = c?.webhooks?.[0]?.clientConfig?.caBundle as string | undefined;
  return b === undefined ? undefined : Buffer.from(b, 'base64').toString();
};

test('the leader syncs the caBundle; a renewal reaches the running webhook and, under the same CA, leaves the bundle alone', async () => {
  await api.start();
  api.put(CONFIGS, { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'modelguard-injector' }, webhooks: [{ name: 'pod.inject.modelguard.io', clientConfig: {} }] });
  const follower = new LeaderElector({ kubeConfig: api.kubeConfig(), namespace: NS, identity: 'b', leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 30 });
  const leader = new LeaderElector({ kubeConfig: api.kubeConfig(), namespace: NS, identity: 'a', leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 30 });
  stops.push(() => leader.stop(), () => follower.stop());
  leader.start();
  await waitFor(() => leader.isLeader, 'a leads');
  follower.start();

  // The follower replica: certificates yes, caBundle no.
  const b = new WebhookTls({ kubeConfig: api.kubeConfig(), namespace: NS, leader: follower });
  stops.push(() => b.stop());
  const fromB = await b.start();
  await b.settled();
  assert.equal(bundle(), undefined, 'a follower leaves the webhook configuration alone');

  let clock = Date.now();
  const a = new WebhookTls({ kubeConfig: api.kubeConfig(), namespace: NS, leader, now: () => new Date(clock) });
  stops.push(() => a.stop());
  const applied: string[] = [];
  a.onRenew((cert) => applied.push(cert));
  const fromA = await a.start();
  assert.equal(fromA.cert, fromB.cert, 'both replicas serve the certificate in the Secret');
  await a.settled();
  assert.equal(bundle(), fromA.caCert);

  clock += 340 * 86_400_000; // within 30 days of the serving certificate's expiry
  await a.check();
  assert.equal(applied.length, 1, 'the renewed certificate was handed to the webhook');
  assert.notEqual(applied[0], fromA.cert);
  assert.equal(bundle(), fromA.caCert, 'same CA: the bundle did not change');
  await a.check();
  assert.equal(applied.length, 1, 'nothing to renew the second time');

  // The Secret deleted by hand: a new CA is issued, served, and the leader moves the bundle to it.
  api.remove(`/api/v1/namespaces/${NS}/secrets`, 'modelguard-webhook-tls');
  await a.check();
  assert.equal(applied.length, 2);
  assert.notEqual(bundle(), fromA.caCert);
  assert.ok(bundle()?.startsWith('-----BEGIN CERTIFICATE-----'));
});
