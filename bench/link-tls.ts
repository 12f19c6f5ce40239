/**
 * What mutual TLS costs on the proxy → broker link (Gateway.spec.brokerTls): sequential inference
 * calls client → proxy → broker → accelerator, through (a) a proxy and broker on plain HTTP with a
 * token and (b) the same over mutual TLS with a certificate-identified proxy, alternating rounds in
 * the same run. Connections are kept alive, as the proxy keeps them, so (b) − (a) is the cost of
 * encrypting one call's bytes; a new connection's handshake is measured apart (once per connection,
 * a proxy holds up to 64). The accelerator (simulated, 0 ms) runs in its own process; proxies and
 * brokers share this one, which is fine for a sequential, one-call-at-a-time measure.
 *
 *   node --import tsx bench/link-tls.ts [--requests 2000] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { compileResources } from '../src/config/index.ts';
import { brokerSnapshot, proxySnapshot } from '../src/config/partition.ts';
import { startBroker, startProxy } from '../src/compose/roles.ts';
import { sha256Hex } from '../src/security/identity.ts';
import { INFER_BODY, INFER_PATH, JSON_HEADERS } from './lib/config.ts';
import { runMain, startAccelerator } from './lib/processes.ts';
import { fixed, machineLine, percentile, say, table } from './lib/stats.ts';

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(args.requests);
const ROUNDS = Number(args.rounds);
const KEY = 'bench-key';
const TOKEN = 'bench-proxy-token';

function certificates(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string> {
  const p = (f: string): string => join(dir, f);
  const ssl = (...a: string[]): void => void execFileSync('openssl', a, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '1', '-subj', '/CN=bench-ca');
  writeFileSync(p('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const [name, cn] of [['server', 'broker'], ['client', 'proxy.bench']] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '1', ...(name === 'server' ? ['-extfile', p('san.ext')] : []));
  }
  return { ca: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'), clientCert: p('client.pem'), clientKey: p('client.key') };
}

async function sequential(url: string, n: number): Promise<number[]> {
  const pool = new Pool(url, { connections: 1 });
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = await pool.request({ method: 'POST', path: INFER_PATH, headers: { ...JSON_HEADERS, authorization: `Bearer ${KEY}` }, body: INFER_BODY });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`${url}: status ${res.statusCode}`);
      times.push(performance.now() - t0);
    }
  } finally {
    await pool.close();
  }
  return times;
}

/** One request on a fresh connection to the broker listener each time: TCP + (TLS) handshake + call. */
async function fresh(url: string, n: number, connect: Record<string, Buffer>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const pool = new Pool(url, { connections: 1, connect });
    const t0 = performance.now();
    const res = await pool.request({ method: 'GET', path: '/_modelguard/ready', headers: { 'x-modelguard-proxy-authorization': `Bearer ${TOKEN}` } });
    await res.body.dump();
    times.push(performance.now() - t0);
    await pool.destroy();
  }
  return times;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-tls-'));
  const c = certificates(dir);
  const accel = await startAccelerator({ slots: 4, serviceTime: '0ms' });
  const resources = (tls: boolean) =>
    compileResources([
      {
        apiVersion: 'modelguard.io/v1alpha1',
        kind: 'Gateway',
        metadata: { name: 'default' },
        spec: tls
          ? { brokerTls: { cert: c.serverCert, key: c.serverKey, clientCa: c.ca }, proxies: [{ name: 'p', certificateNames: ['proxy.bench'] }] }
          : { proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex(TOKEN) }] }] },
      },
      { apiVersion: 'modelguard.io/v1alpha1', kind: 'Backend', metadata: { name: 'accel' }, spec: { protocol: 'kserve-v2-http', endpoints: [{ url: accel.url, slots: 4 }] } },
      { apiVersion: 'modelguard.io/v1alpha1', kind: 'Model', metadata: { name: 'demo' }, spec: { backend: 'accel' } },
      { apiVersion: 'modelguard.io/v1alpha1', kind: 'App', metadata: { name: 'bench' }, spec: { apiKeys: [{ sha256: sha256Hex(KEY) }] } },
    ], { version: 1 }).snapshot;
  const local = { admin: '127.0.0.1:0' };
  const plainFull = resources(false);
  const tlsFull = resources(true);
  const plainBroker = await startBroker(brokerSnapshot(plainFull, 'n'), { ...local, listen: '127.0.0.1:0' });
  const tlsBroker = await startBroker(brokerSnapshot(tlsFull, 'n'), { ...local, listen: '127.0.0.1:0' });
  const clientTls = { cert: readFileSync(c.clientCert), key: readFileSync(c.clientKey), ca: readFileSync(c.ca) };
  const ports = { http: '127.0.0.1:0', grpc: '127.0.0.1:0', ...local };
  const plainProxy = await startProxy(proxySnapshot(plainFull, []), { broker: plainBroker.linkUrl, token: TOKEN, ...ports });
  const tlsProxy = await startProxy(proxySnapshot(tlsFull, []), { broker: tlsBroker.linkUrl, tls: clientTls, ...ports });
  try {
    await sequential(plainProxy.httpUrl, 300);
    await sequential(tlsProxy.httpUrl, 300);
    const plain: number[] = [];
    const tls: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      plain.push(...(await sequential(plainProxy.httpUrl, N)));
      tls.push(...(await sequential(tlsProxy.httpUrl, N)));
    }
    const plainNew = await fresh(plainBroker.linkUrl, 200, {});
    const tlsNew = await fresh(tlsBroker.linkUrl, 200, clientTls);
    say(await machineLine());
    say(`sequential calls client → proxy → broker → accelerator (0 ms), ${ROUNDS} × ${N} per path, kept-alive link`);
    const row = (name: string, t: number[]): string[] => [name, fixed(percentile(t, 50), 3), fixed(percentile(t, 99), 3)];
    say(table(['path', 'p50 ms', 'p99 ms'], [row('plain HTTP + token', plain), row('mutual TLS, certificate', tls)]));
    say(`p50 ratio mTLS / plain: ${fixed(percentile(tls, 50) / percentile(plain, 50))}; added p50 ${fixed((percentile(tls, 50) - percentile(plain, 50)) * 1000, 0)} µs per call`);
    say('');
    say('a new connection to the broker listener and one readiness call (200 each):');
    say(table(['link', 'p50 ms', 'p99 ms'], [row('plain HTTP', plainNew), row('mutual TLS (RSA 2048)', tlsNew)]));
  } finally {
    await Promise.all([plainProxy.close(), tlsProxy.close()]);
    await Promise.all([plainBroker.close(), tlsBroker.close()]);
    await accel.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
