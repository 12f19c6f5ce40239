/**
 * The cloud link: mutual TLS against a CA of our own and a credential read from an environment
 * variable or a file, in front of the "cloud" demo server. The cloud sees the link's secret and
 * ModelGuard's client certificate, never the app's own key; a link whose secret is missing fails its
 * calls (and the request is answered as the edge alone would) instead of sending them unauthenticated.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator } from '../helpers/harness.ts';
import { compileResources } from '../../src/config/index.ts';
import { startGateway } from '../../src/compose/gateway.ts';
import { infer, newPool, offloadGateway, offloadResources } from './helpers.ts';

interface Seen {
  auth: string | undefined;
  apiKey: string | undefined;
  clientCN: string | undefined;
}

function makeCerts(dir: string): Record<'ca' | 'serverKey' | 'serverCert' | 'clientKey' | 'clientCert', string> {
  const p = (f: string): string => join(dir, f);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=test-ca');
  writeFileSync(p('san.ext'), 'subjectAltName=DNS:cloud.test\n');
  for (const [name, cn] of [['server', 'cloud.test'], ['client', 'modelguard-box']] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '2', ...(name === 'server' ? ['-extfile', p('san.ext')] : []));
  }
  return { ca: p('ca.pem'), serverKey: p('server.key'), serverCert: p('server.pem'), clientKey: p('client.key'), clientCert: p('client.pem') };
}

describe('cloud link: TLS and credentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-link-'));
  let certs: ReturnType<typeof makeCerts>;
  let cloud: ModelServer;
  let edge: ModelServer;
  let front: Server;
  let frontUrl: string;
  const seen: Seen[] = [];
  const ENV = `MG_TEST_CLOUD_KEY_${process.pid}`;

  before(async () => {
    certs = makeCerts(dir);
    cloud = await accelerator({ slots: 4 });
    edge = await accelerator({ slots: 1 });
    await edge.stop(); // the edge is down: every request fails over to the cloud
    // The cloud's front door: mutual TLS, then a credential check, then the model server.
    front = createServer({ key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert), ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
      const s: Seen = { auth: req.headers.authorization, apiKey: req.headers['x-api-key'] as string | undefined, clientCN: typeof cn === 'string' ? cn : undefined };
      if (req.method === 'POST') seen.push(s);
      if (s.auth !== 'Bearer s3cret' && !s.apiKey?.startsWith('k3y')) {
        res.writeHead(401).end();
        return;
      }
      void fetch(`${cloud.url}${req.url}`, { method: req.method ?? 'GET', headers: { 'content-type': 'application/json' }, body: req.method === 'POST' ? req : null, duplex: 'half' } as RequestInit).then(async (r) => {
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(Buffer.from(await r.arrayBuffer()));
      });
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    frontUrl = `https://127.0.0.1:${(front.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => front.close(() => resolve()));
    front.closeAllConnections();
    await cloud.close();
    await edge.close();
    delete process.env[ENV];
  });

  async function through(cloudSpec: Record<string, unknown>): Promise<{ status: number; code: string | undefined; servedBy: string | undefined }> {
    const gw = await offloadGateway({
      edge: [{ url: edge.url, slots: 1 }],
      cloud: [{ url: frontUrl, slots: 4 }],
      cloudSpec,
      models: [{ name: 'demo', offload: { when: 'failover', breaker: { failureThreshold: 100 } } }],
    });
    const pool = newPool(gw.httpUrl);
    try {
      // The edge is ejected on its first refused connection; until then the request is retried there.
      return await infer(pool, 'demo');
    } finally {
      await pool.close();
      await gw.close();
    }
  }

  const tls = (): Record<string, unknown> => ({ ca: certs.ca, cert: certs.clientCert, key: certs.clientKey, serverName: 'cloud.test' });

  it('sends the bearer token from an environment variable over mutual TLS, and not the app key', async () => {
    process.env[ENV] = 's3cret';
    seen.length = 0;
    const r = await through({ tls: tls(), credentials: { env: ENV } });
    assert.equal(r.status, 200, r.code);
    assert.equal(r.servedBy, 'cloud');
    assert.deepEqual(seen, [{ auth: 'Bearer s3cret', apiKey: undefined, clientCN: 'modelguard-box' }]);
  });

  it('sends a bare API key from a file in the header it is told', async () => {
    const keyFile = join(dir, 'cloud-key');
    writeFileSync(keyFile, 'k3y\n');
    seen.length = 0;
    const r = await through({ tls: tls(), credentials: { file: keyFile, header: 'x-api-key', scheme: '' } });
    assert.equal(r.servedBy, 'cloud');
    assert.deepEqual(seen, [{ auth: undefined, apiKey: 'k3y', clientCN: 'modelguard-box' }]);
  });

  it('reads a rotated secret file on reload', async () => {
    const keyFile = join(dir, 'rotating-key');
    writeFileSync(keyFile, 'k3y-1\n');
    const resources = offloadResources({
      edge: [{ url: edge.url, slots: 1 }],
      cloud: [{ url: frontUrl, slots: 4 }],
      cloudSpec: { tls: tls(), credentials: { file: keyFile, header: 'x-api-key', scheme: '' } },
      models: [{ name: 'demo', offload: { when: 'failover' } }],
    });
    const gw = await startGateway(compileResources(resources, { version: 1 }).snapshot, { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    const pool = newPool(gw.httpUrl);
    try {
      seen.length = 0;
      assert.equal((await infer(pool, 'demo')).servedBy, 'cloud');
      writeFileSync(keyFile, 'k3y-2\n');
      gw.reload(compileResources(resources, { version: 2 }).snapshot);
      assert.equal((await infer(pool, 'demo')).servedBy, 'cloud');
      assert.deepEqual(seen.map((x) => x.apiKey), ['k3y-1', 'k3y-2']);
    } finally {
      await pool.close();
      await gw.close();
    }
  });

  it('refuses a server whose certificate our CA did not sign, and sends nothing without its secret', async () => {
    seen.length = 0;
    const untrusted = await through({ tls: { serverName: 'cloud.test' }, credentials: { env: ENV } });
    assert.equal(untrusted.status, 503);
    assert.equal(untrusted.code, 'MG_NO_BACKEND');
    delete process.env[ENV];
    const noSecret = await through({ tls: tls(), credentials: { env: ENV } });
    assert.equal(noSecret.status, 503);
    assert.equal(noSecret.code, 'MG_NO_BACKEND');
    assert.deepEqual(seen, [], 'no request reached the cloud');
  });
});
