import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { execFileSync } from 'node:child_process';
import { issueAll, serviceDnsNames } from '../../src/k8s/certs.ts';
import type { WebhookCerts } from '../../src/k8s/certs.ts';
import { InjectionWebhook } from '../../src/k8s/webhook.ts';
import { APP_ANNOTATION, PROXY_CONTAINER, INIT_CONTAINER, decide, redirectScript } from '../../src/k8s/inject.ts';
import type { Decision } from '../../src/k8s/inject.ts';
import { applyPatch } from './json-patch.ts';
import type { PatchOp } from './json-patch.ts';
import { NS, fixture } from './helpers.ts';
import type { Json } from './helpers.ts';

const SERVICE_NAME = `modelguard-webhook.${NS}.svc`;
let certs: WebhookCerts;
let webhook: InjectionWebhook;
let url: string;
const decisions: Decision[] = [];
const apps = new Set(['camera-line-1']);
const options = { image: 'ghcr.io/modelguard/modelguard:0.1.0', controllerUrl: `http://modelguard-controller.${NS}.svc:9090`, namespace: NS };

interface Review {
  apiVersion: string;
  kind: string;
  request: { uid: string; namespace: string; operation: string; kind: { kind: string }; object: Json };
}
interface Reply {
  status: number;
  body: Json;
}

/** POSTs to the webhook the way the API server does: TLS verified against the CA, by the Service's DNS name. */
function post(path: string, body: string, ca = certs.caCert): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: 'POST', ca, servername: SERVICE_NAME, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const review = (name = 'admissionreview-pod-create.json'): Review => fixture<Review>(name);
const patchOf = (reply: Reply): PatchOp[] => JSON.parse(Buffer.from(reply.body.response.patch as string, 'base64').toString('utf8')) as PatchOp[];

before(async () => {
  certs = issueAll({ dnsNames: serviceDnsNames('modelguard-webhook', NS) });
  webhook = new InjectionWebhook({ ...options, cert: certs.cert, key: certs.key, host: '127.0.0.1', port: 0, knownApp: (n) => apps.has(n), onDecision: (d) => decisions.push(d) });
  url = await webhook.listen();
});
after(() => webhook.close());

test('a labelled pod gets the proxy, the redirect init container and volumes, in a JSON Patch the API server can apply', async () => {
  const r = review();
  const reply = await post('/inject', JSON.stringify(r));
  assert.equal(reply.status, 200);
  assert.equal(reply.body.apiVersion, 'admission.k8s.io/v1');
  assert.equal(reply.body.kind, 'AdmissionReview');
  assert.equal(reply.body.response.uid, r.request.uid);
  assert.equal(reply.body.response.allowed, true);
  assert.equal(reply.body.response.patchType, 'JSONPatch');
  const pod = applyPatch(r.request.object, patchOf(reply));
  const proxy = pod.spec.containers.find((c: Json) => c.name === PROXY_CONTAINER);
  assert.deepEqual(proxy.args, [
    'proxy',
    '--controller', options.controllerUrl,
    '--name', '$(POD_NAME).$(POD_NAMESPACE)',
    '--app', 'camera-line-1',
    '--broker', 'http://$(HOST_IP):8010',
    '--listen', '0.0.0.0:15080',
    '--grpc', '0.0.0.0:15081',
    '--admin', '0.0.0.0:15090',
    '--token-file', '/var/run/secrets/modelguard.io/token',
    '--node-token-file', '/var/run/secrets/modelguard.io/node-token',
  ]);
  // The proxy's credentials come from the namespace's modelguard-proxy Secret.
  assert.deepEqual(pod.spec.volumes.find((v: Json) => v.name === 'modelguard-token').secret.secretName, 'modelguard-proxy');
  assert.deepEqual(proxy.env.find((e: Json) => e.name === 'HOST_IP').valueFrom, { fieldRef: { fieldPath: 'status.hostIP' } });
  assert.deepEqual(proxy.readinessProbe.httpGet, { path: '/readyz', port: 15090 });
  assert.deepEqual(proxy.livenessProbe.httpGet, { path: '/healthz', port: 15090 });
  assert.equal(proxy.securityContext.runAsUser, 1337);
  assert.ok(proxy.resources.requests.cpu !== undefined && proxy.resources.limits.memory !== undefined);
  // The app container is untouched; the init container runs first.
  assert.equal(pod.spec.containers[0].name, 'detector');
  assert.deepEqual(pod.spec.containers[0], r.request.object.spec.containers[0]);
  assert.equal(pod.spec.initContainers[0].name, INIT_CONTAINER);
  assert.deepEqual(pod.spec.initContainers[0].securityContext.capabilities.add, ['NET_ADMIN', 'NET_RAW']);
  const script: string = pod.spec.initContainers[0].command[2];
  assert.match(script, /--uid-owner 1337 -j RETURN/);
  assert.match(script, /--dport 8000 -j REDIRECT --to-ports 15080/);
  assert.match(script, /--dport 8001 -j REDIRECT --to-ports 15080/);
  // Volumes: the existing one kept, ours added; every mount of the proxy has its volume.
  const volumes = pod.spec.volumes.map((v: Json) => String(v.name));
  assert.equal(volumes[0], 'kube-api-access-x7k2p');
  for (const m of proxy.volumeMounts) assert.ok(volumes.includes(m.name), `volume ${m.name}`);
  assert.equal(pod.metadata.annotations['modelguard.io/status'], 'injected');
});

test('invoked twice (a reinvocation, or a retry on the patched pod) it adds nothing the second time', async () => {
  const r = review();
  const first = await post('/inject', JSON.stringify(r));
  const patched = applyPatch(r.request.object, patchOf(first));
  const again = await post('/inject', JSON.stringify({ ...r, request: { ...r.request, object: patched } }));
  assert.equal(again.body.response.allowed, true);
  assert.equal(again.body.response.patch, undefined);
  assert.equal(decisions[decisions.length - 1]!.kind, 'skip');
});

test('system namespaces and the controller\'s namespace are never injected, labels or not', async () => {
  const r = review('admissionreview-kube-system.json');
  const reply = await post('/inject', JSON.stringify(r));
  assert.equal(reply.body.response.allowed, true);
  assert.equal(reply.body.response.patch, undefined);
  for (const ns of ['kube-public', 'kube-node-lease', NS]) {
    const d = decide(review().request.object, ns, options, () => true);
    assert.equal(d.kind, 'skip', ns);
  }
  const optedOut = review().request.object;
  optedOut.metadata.labels['modelguard.io/inject'] = 'disabled';
  assert.equal(decide(optedOut, 'factory', options, () => true).kind, 'skip');
});

test('hostNetwork pods are never injected; a pod already using the proxy\'s ports is rejected with the reason', () => {
  const host = review().request.object;
  host.spec.hostNetwork = true;
  const d = decide(host, 'factory', options, () => true);
  assert.equal(d.kind, 'skip');
  assert.match((d as { reason: string }).reason, /hostNetwork/);
  const clash = review().request.object;
  clash.spec.containers[0].ports = [{ containerPort: 15090 }];
  const c = decide(clash, 'factory', options, () => true);
  assert.equal(c.kind, 'deny');
  assert.match((c as { message: string }).message, /container "detector" uses port 15080, 15081 or 15090/);
});

test('an unknown app is rejected with a message that says what to do; a missing annotation too', async () => {
  const r = review();
  r.request.object.metadata.annotations[APP_ANNOTATION] = 'camera-line-9';
  const reply = await post('/inject', JSON.stringify(r));
  assert.equal(reply.body.response.allowed, false);
  assert.equal(reply.body.response.status.code, 403);
  assert.match(reply.body.response.status.message, /"camera-line-9" names no ModelGuard App: create it first/);
  delete r.request.object.metadata.annotations[APP_ANNOTATION];
  const missing = await post('/inject', JSON.stringify(r));
  assert.equal(missing.body.response.allowed, false);
  assert.match(missing.body.response.status.message, /no modelguard\.io\/app annotation/);
  // An App created later is accepted without restarting the webhook: knownApp is read per request.
  apps.add('camera-line-9');
  r.request.object.metadata.annotations[APP_ANNOTATION] = 'camera-line-9';
  assert.equal((await post('/inject', JSON.stringify(r))).body.response.allowed, true);
});

test('bad annotations and bad requests get clear answers, and the server keeps serving', async () => {
  const r = review();
  r.request.object.metadata.annotations['modelguard.io/redirect-ports'] = '8000,http';
  const reply = await post('/inject', JSON.stringify(r));
  assert.equal(reply.body.response.allowed, false);
  assert.match(reply.body.response.status.message, /redirect-ports: expected comma-separated ports/);
  assert.equal((await post('/inject', '{not json')).status, 400);
  assert.equal((await post('/inject', JSON.stringify({ kind: 'Pod' }))).status, 400);
  assert.equal((await post('/mutate', '{}')).status, 404);
  const update = review();
  update.request.operation = 'UPDATE';
  const u = await post('/inject', JSON.stringify(update));
  assert.equal(u.body.response.allowed, true);
  assert.equal(u.body.response.patch, undefined);
  // A pod without annotations or init containers: the patch creates them rather than appending.
  const bare = review();
  delete bare.request.object.metadata.annotations;
  bare.request.object.metadata.labels['modelguard.io/inject'] = 'enabled';
  assert.equal(decide(bare.request.object, 'factory', options, () => true).kind, 'deny');
  const pod = { metadata: { name: 'p', annotations: { [APP_ANNOTATION]: 'camera-line-1' } }, spec: { containers: [{ name: 'c' }] } };
  const d = decide(pod, 'factory', options, () => true);
  assert.equal(d.kind, 'patch');
  const out: Json = applyPatch(pod, (d as { patch: readonly PatchOp[] }).patch);
  assert.equal(out.spec.initContainers.length, 1);
  assert.equal(out.spec.volumes.length, 2);
  assert.equal((await post('/inject', JSON.stringify(review()))).body.response.allowed, true);
});

test('TLS: a client that trusts another CA is refused; setCertificate serves renewed certificates', async () => {
  const other = issueAll({ dnsNames: serviceDnsNames('modelguard-webhook', NS) });
  await assert.rejects(post('/inject', JSON.stringify(review()), other.caCert), /self[- ]signed|unable to verify|certificate/i);
  webhook.setCertificate(other.cert, other.key);
  assert.equal((await post('/inject', JSON.stringify(review()), other.caCert)).status, 200);
  webhook.setCertificate(certs.cert, certs.key);
});

test('the redirect script is valid shell, and the rule for the proxy\'s own user comes before any redirect', () => {
  const script = redirectScript({ ports: [8000], cidrs: ['10.96.12.7/32'], proxyPort: 15080, proxyUid: 1337 });
  execFileSync('/bin/sh', ['-n', '-c', script]);
  const lines = script.split('\n');
  const exempt = lines.findIndex((l) => l.includes('--uid-owner 1337'));
  const redirect = lines.findIndex((l) => l.includes('-j REDIRECT'));
  assert.ok(exempt > 0 && exempt < redirect);
  assert.match(script, /-p tcp -d 10\.96\.12\.7\/32 --dport 8000 -j REDIRECT --to-ports 15080/);
  // Re-running (a restarted init container) flushes its own chain and does not add a second jump.
  assert.match(lines[1]!, /-N MODELGUARD_REDIRECT .*\|\| iptables -t nat -F MODELGUARD_REDIRECT/);
  assert.match(lines[lines.length - 1]!, /-C OUTPUT .*\|\| iptables -t nat -A OUTPUT/);
});

test('a client that vanishes mid-request, or a throwing onDecision, ends that request only', async () => {
  const u = new URL(url);
  await new Promise<void>((resolve) => {
    const req = request({ host: u.hostname, port: u.port, path: '/inject', method: 'POST', ca: certs.caCert, servername: SERVICE_NAME, headers: { 'content-length': '100000' } });
    req.on('error', () => resolve());
    req.write('{"kind":"AdmissionReview",');
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 50);
  });
  assert.equal((await post('/inject', JSON.stringify(review()))).status, 200);
  const throwing = new InjectionWebhook({ ...options, cert: certs.cert, key: certs.key, host: '127.0.0.1', port: 0, knownApp: () => true, onDecision: () => { throw new Error('log sink broken'); } });
  const throwingUrl = await throwing.listen();
  try {
    const saved = url;
    url = throwingUrl;
    await assert.rejects(post('/inject', JSON.stringify(review())), /socket hang up|ECONNRESET/);
    url = saved;
    assert.equal((await post('/healthz', '')).status, 404, 'the first server still answers');
  } finally {
    await throwing.close();
  }
});
