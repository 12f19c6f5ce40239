/**
 * Time the injection webhook adds to a pod creation: sequential AdmissionReviews (the fixture pod)
 * over one kept-alive TLS connection, as the API server sends them, answered by (a) a TLS server
 * that returns a fixed allow (the floor: TLS, HTTP and JSON on this machine) and (b) the injector.
 * The ratio of the medians says what deciding and building the patch costs on top. Also: how long
 * issuing the CA and serving certificate takes (once per cluster, then reused from the Secret).
 *
 *   node --import tsx bench/webhook.ts [--requests 2000]
 */
import { createServer, request, Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { issueAll, serviceDnsNames } from '../src/k8s/certs.ts';
import { InjectionWebhook } from '../src/k8s/webhook.ts';

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '2000' } } });
const N = Number(args.requests);
const SERVICE = 'modelguard-webhook.modelguard-system.svc';
const body = readFileSync(new URL('../test/k8s/fixtures/admissionreview-pod-create.json', import.meta.url), 'utf8');

const t0 = performance.now();
const certs = issueAll({ dnsNames: serviceDnsNames('modelguard-webhook', 'modelguard-system') });
const issueMs = performance.now() - t0;

async function run(url: string): Promise<number[]> {
  const u = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: certs.caCert, servername: SERVICE });
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const start = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: '/inject', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end(body);
    });
    times.push(performance.now() - start);
  }
  agent.destroy();
  return times.slice(Math.floor(N / 10)); // the first tenth warms up
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const floor = createServer({ cert: certs.cert, key: certs.key }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const uid = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } }).request.uid;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } }));
  });
});
await new Promise<void>((r) => floor.listen(0, '127.0.0.1', r));
const webhook = new InjectionWebhook({ cert: certs.cert, key: certs.key, host: '127.0.0.1', port: 0, image: 'modelguard:0.1.0', controllerUrl: 'http://c:9090', namespace: 'modelguard-system', knownApp: () => true });
const hookUrl = await webhook.listen();

const base = await run(`https://127.0.0.1:${(floor.address() as AddressInfo).port}`);
const hook = await run(hookUrl);
floor.close();
await webhook.close();

console.log(`certificates: CA + serving certificate issued in ${issueMs.toFixed(0)} ms (RSA 2048)`);
console.log(`requests: ${N} sequential, first ${Math.floor(N / 10)} dropped as warm-up`);
console.log(`fixed-allow TLS server  p50 ${pct(base, 50).toFixed(3)} ms  p99 ${pct(base, 99).toFixed(3)} ms`);
console.log(`injection webhook       p50 ${pct(hook, 50).toFixed(3)} ms  p99 ${pct(hook, 99).toFixed(3)} ms`);
console.log(`ratio (webhook / floor) p50 ${(pct(hook, 50) / pct(base, 50)).toFixed(2)}  p99 ${(pct(hook, 99) / pct(base, 99)).toFixed(2)}`);
