import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderElector } from '../../src/k8s/leader.ts';
import type { LeaderElectorOptions } from '../../src/k8s/leader.ts';
import { FakeApiServer } from './fake-apiserver.ts';
import { LEASES, NS, waitFor } from './helpers.ts';

const servers: FakeApiServer[] = [];
const electors: LeaderElector[] = [];
after(async () => {
  for (const e of electors) await e.stop();
  for (const s of servers) await s.close();
});

async function fake(): Promise<FakeApiServer> {
  const s = new FakeApiServer();
  await s.start();
  servers.push(s);
  return s;
}

const LEASE_MS = 1000;
function elector(api: FakeApiServer, identity: string, extra: Partial<LeaderElectorOptions> = {}): LeaderElector {
  const e = new LeaderElector({ kubeConfig: api.kubeConfig(), namespace: NS, identity, leaseDurationMs: LEASE_MS, renewDeadlineMs: 600, retryPeriodMs: 50, ...extra });
  electors.push(e);
  return e;
}

type LeaseSpec = { holderIdentity: string; leaseDurationSeconds: number; renewTime: string; acquireTime: string; leaseTransitions: number };
const leaseOf = (api: FakeApiServer): LeaseSpec | undefined => api.get(LEASES, 'modelguard-controller')?.spec as LeaseSpec | undefined;

test('the first candidate creates the Lease and leads; the second follows while it is renewed', async () => {
  const api = await fake();
  const a = elector(api, 'controller-a');
  const changes: boolean[] = [];
  a.onChange((l) => changes.push(l));
  a.start();
  await waitFor(() => a.isLeader, 'a leads');
  const b = elector(api, 'controller-b');
  b.start();
  const renewals = api.requests.filter((r) => r.method === 'PUT').length;
  await waitFor(() => api.requests.filter((r) => r.method === 'PUT').length >= renewals + 5, 'a renews');
  assert.equal(b.isLeader, false);
  assert.equal(leaseOf(api)?.holderIdentity, 'controller-a');
  assert.equal(leaseOf(api)?.leaseDurationSeconds, 1);
  // renewTime is a MicroTime: six fractional digits, as the API server requires.
  assert.match(leaseOf(api)!.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.deepEqual(changes, [true]);
});

test('stop() releases the Lease and the follower takes over well before the lease would expire', async () => {
  const api = await fake();
  const a = elector(api, 'controller-a');
  a.start();
  await waitFor(() => a.isLeader, 'a leads');
  const b = elector(api, 'controller-b');
  b.start();
  await waitFor(() => api.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/leases/modelguard-controller')).length > 6, 'b polls');
  const t0 = performance.now();
  await a.stop();
  assert.equal(a.isLeader, false);
  await waitFor(() => b.isLeader, 'b leads');
  const took = performance.now() - t0;
  assert.ok(took < LEASE_MS * 0.6, `takeover after a release took ${took.toFixed(0)} ms; a lease is ${LEASE_MS} ms`);
  assert.equal(leaseOf(api)?.holderIdentity, 'controller-b');
  assert.equal(leaseOf(api)?.leaseTransitions, 1);
});

test('a leader that vanishes without releasing is replaced only after a whole lease duration', async () => {
  const api = await fake();
  const a = elector(api, 'controller-a', { releaseOnStop: false });
  a.start();
  await waitFor(() => a.isLeader, 'a leads');
  const b = elector(api, 'controller-b');
  b.start();
  await waitFor(() => api.requests.filter((r) => r.method === 'GET').length > 6, 'b polls');
  const t0 = performance.now();
  await a.stop(); // a crash: no release, no more renewals
  await waitFor(() => b.isLeader, 'b leads', 5000);
  const took = performance.now() - t0;
  assert.ok(took >= LEASE_MS * 0.9, `b took over after ${took.toFixed(0)} ms, before the ${LEASE_MS} ms lease ran out`);
  assert.equal(leaseOf(api)?.holderIdentity, 'controller-b');
});

test('a leader that cannot renew steps down within renewDeadline, before anyone could take its lease', async () => {
  const api = await fake();
  const errors: string[] = [];
  // A wide margin between renewDeadline and the lease, so a loaded machine's timer delays cannot close it.
  const a = elector(api, 'controller-a', { onError: (e) => errors.push(e.message), leaseDurationMs: 2000, renewDeadlineMs: 600 });
  const events: { leader: boolean; at: number }[] = [];
  a.onChange((leader) => events.push({ leader, at: performance.now() }));
  a.start();
  await waitFor(() => a.isLeader, 'a leads');
  await waitFor(() => api.requests.filter((r) => r.method === 'PUT').length >= 2, 'a renewed once');
  api.failNext('PUT', '/leases/', 500, 1000);
  const lastGood = performance.now();
  await waitFor(() => !a.isLeader, 'a steps down', 3000);
  const stepDown = events.find((e) => !e.leader)!.at - lastGood;
  assert.ok(stepDown >= 300, `stepped down ${stepDown.toFixed(0)} ms after the last renewal: one failed renewal (every 50 ms) is not enough`);
  assert.ok(stepDown < 2000, `stepped down ${stepDown.toFixed(0)} ms after the last renewal, lease is 2000 ms`);
  assert.ok(errors.length > 0, 'renewal errors are reported');
});

test('two candidates starting together never both lead (writes carry the resourceVersion)', async () => {
  const api = await fake();
  const a = elector(api, 'controller-a');
  const b = elector(api, 'controller-b');
  let both = 0;
  let samples = 0;
  a.start();
  b.start();
  const end = performance.now() + 600;
  while (performance.now() < end) {
    if (a.isLeader && b.isLeader) both++;
    samples++;
    await new Promise((r) => setTimeout(r, 3));
  }
  assert.ok(samples > 50);
  assert.equal(both, 0);
  assert.equal(Number(a.isLeader) + Number(b.isLeader), 1);
});

test('a leader whose renewals hang (no answer at all) still steps down before its lease runs out', async () => {
  const api = await fake();
  const a = elector(api, 'controller-a', { leaseDurationMs: 2000, renewDeadlineMs: 600 });
  a.start();
  await waitFor(() => a.isLeader, 'a leads');
  await waitFor(() => api.requests.filter((r) => r.method === 'PUT').length >= 1, 'a renewed once');
  api.failNext('GET', '/leases/', 0, 1000);
  const t0 = performance.now();
  await waitFor(() => !a.isLeader, 'a steps down', 4000);
  const took = performance.now() - t0;
  assert.ok(took < 2000, `stepped down after ${took.toFixed(0)} ms of hung requests; the lease is 2000 ms`);
});
