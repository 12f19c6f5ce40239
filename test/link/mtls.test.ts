/**
 * Mutual TLS between proxy and broker (Gateway.spec.brokerTls), with a CA, a broker certificate and
 * proxy certificates made by openssl at test time: a certificate identifies a proxy without a token;
 * no certificate, or one from another CA, is refused in the handshake; a good certificate naming no
 * proxy is 401, one asserting an app its proxy may not is 403; a token and a certificate must agree;
 * plain HTTP fails clearly; rotated certificate files are served without a restart.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { brokerSnapshot, proxySnapshot } from '../../src/config/partition.ts';
import { startBroker, startProxy, type BrokerRole, type ProxyRole } from '../../src/compose/roles.ts';
import type { RequestRecord } from '../../src/core/events.ts';
import type { Snapshot } from '../../src/core/snapshot.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, INFER_BODY, keyFor, send, snapshotFor, waitFor } from '../helpers/harness.ts';
import { assertAt, issue, loadError } from '../config/helpers.ts';
import { followProxyTls, proxyTls } from '../../src/cli/tls.ts';

const TOKEN_B = 'proxy-token-b';
const TOKEN_T = 'proxy-token-only';

type Pems = { cert: string; key: string };

/** A CA, a foreign CA, broker certificates for 127.0.0.1/localhost, and proxy client certificates. */
function makeCerts(dir: string) {
  const p = (f: string): string => join(dir, f);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  for (const ca of ['ca', 'foreign-ca']) {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${ca}.key`), '-out', p(`${ca}.pem`), '-days', '2', '-subj', `/CN=${ca}`);
  }
  const issue = (name: string, subject: string, san: string | undefined, ca = 'ca'): Pems => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subject);
    const ext = san === undefined ? [] : ['-extfile', p(`${name}.ext`)];
    if (san !== undefined) writeFileSync(p(`${name}.ext`), `subjectAltName=${san}\n`);
    ssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${ca}.pem`), '-CAkey', p(`${ca}.key`), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '2', ...ext);
    return { cert: p(`${name}.pem`), key: p(`${name}.key`) };
  };
  const brokerSan = 'DNS:localhost,IP:127.0.0.1';
  return {
    ca: p('ca.pem'),
    broker: issue('broker', '/CN=broker-1', brokerSan),
    broker2: issue('broker2', '/CN=broker-2', brokerSan),
    broker3: issue('broker3', '/CN=broker-3', brokerSan),
    // DNS SANs name it; its CN is a trap another proxy lists (SANs win when present).
    proxyA: issue('proxy-a', '/CN=proxy-a-cn', 'DNS:Proxy-A.test'),
    // No SAN: its CN names it.
    proxyB: issue('proxy-b', '/CN=proxy-b', undefined),
    stranger: issue('stranger', '/CN=stranger', 'DNS:stranger.test'),
    foreign: issue('foreign', '/CN=proxy-b', undefined, 'foreign-ca'),
  };
}

describe('proxy → broker over mutual TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-mtls-'));
  let certs: ReturnType<typeof makeCerts>;
  let model: ModelServer;
  let broker: BrokerRole;
  let proxy: ProxyRole;
  let full: Snapshot;
  const seenAtBroker: RequestRecord[] = [];
  const pools: Pool[] = [];

  /** The broker's files live at fixed paths so that rotation can overwrite them. */
  const serverCert = (): string => join(dir, 'served.pem');
  const serverKey = (): string => join(dir, 'served.key');

  const tlsPool = (client: Pems | undefined, ca?: string): Pool => {
    const pool = new Pool(broker.linkUrl, {
      connections: 1,
      pipelining: 0,
      connect: { ca: readFileSync(ca ?? certs.ca), ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) },
    });
    pools.push(pool);
    return pool;
  };
  const linkHeaders = (app: string): Record<string, string> => ({ 'x-modelguard-app': app, 'x-modelguard-model': 'demo', 'x-modelguard-api': 'kserve-v2' });

  /** sha256 fingerprint of the certificate the broker listener presents to a new connection. */
  const servedFingerprint = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const port = Number(new URL(broker.linkUrl).port);
      const s = connect({ host: '127.0.0.1', port, ca: readFileSync(certs.ca), cert: readFileSync(certs.proxyA.cert), key: readFileSync(certs.proxyA.key) }, () => {
        const fp = s.getPeerCertificate().fingerprint256;
        s.end();
        resolve(fp);
      });
      s.once('error', reject);
    });
  const fingerprintOf = (pem: string): string => {
    const out = execFileSync('openssl', ['x509', '-in', pem, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    return (out.split('=')[1] ?? '').trim();
  };

  before(async () => {
    certs = makeCerts(dir);
    copyFileSync(certs.broker.cert, serverCert());
    copyFileSync(certs.broker.key, serverKey());
    model = await accelerator({ slots: 2, serviceTime: 5 });
    full = snapshotFor({
      endpoints: [{ url: model.url, slots: 2 }],
      groups: [{ name: 'a' }, { name: 'b' }],
      gateway: {
        brokerTls: { cert: serverCert(), key: serverKey(), clientCa: certs.ca },
        proxies: [
          { name: 'sidecar-a', certificateNames: ['proxy-a.test'], apps: ['app-a'] },
          { name: 'sidecar-b', certificateNames: ['proxy-b'], tokens: [{ sha256: sha256Hex(TOKEN_B) }], apps: ['app-b'] },
          { name: 'cn-trap', certificateNames: ['proxy-a-cn'], apps: ['app-b'] },
          { name: 'token-only', tokens: [{ sha256: sha256Hex(TOKEN_T) }] },
        ],
      },
    });
    broker = await startBroker(brokerSnapshot(full, 'node-1'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0', tlsWatchMs: 50 });
    broker.pipeline.events.subscribe((r) => seenAtBroker.push(r));
    proxy = await startProxy(proxySnapshot(full, []), {
      broker: broker.linkUrl,
      tls: { cert: readFileSync(certs.proxyA.cert), key: readFileSync(certs.proxyA.key), ca: readFileSync(certs.ca) },
      http: '127.0.0.1:0',
      grpc: '127.0.0.1:0',
      admin: '127.0.0.1:0',
    });
    await waitFor(() => proxy.pipeline.ready(), 'the proxy to reach its broker over mTLS');
  });

  after(async () => {
    await Promise.all(pools.map((p) => p.destroy()));
    await proxy.close();
    await broker.close();
    await model.close();
  });

  it("keeps the broker's certificate paths in the broker's snapshot only", () => {
    assert.deepEqual(brokerSnapshot(full, 'node-1').gateway.brokerTls, { cert: serverCert(), key: serverKey(), clientCa: certs.ca });
    assert.equal(proxySnapshot(full, []).gateway.brokerTls, undefined);
    assert.deepEqual(full.gateway.proxies.find((p) => p.name === 'sidecar-a')?.certificateNames, ['proxy-a.test']);
  });

  it('serves a proxy identified by its certificate alone, and records the app it asserts', async () => {
    assert.match(broker.linkUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const p = new Pool(proxy.httpUrl);
    pools.push(p);
    const before = seenAtBroker.length;
    const res = await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY });
    assert.equal(res.status, 200, res.body);
    await waitFor(() => seenAtBroker.length > before, 'the broker record');
    const rec = seenAtBroker.at(-1)!;
    assert.deepEqual([rec.app, rec.group, rec.model, rec.outcome], ['app-a', 'a', 'demo', 'OK']);
    // The certificate's DNS SAN named sidecar-a (case-insensitively); its CN (listed by cn-trap, which
    // may not act for app-a) was not used, or this call would have been 403 or ambiguous.
  });

  it('refuses a client without a certificate in the TLS handshake', async () => {
    const before = seenAtBroker.length;
    await assert.rejects(send(tlsPool(undefined), '/v2/models/demo/infer', { body: INFER_BODY, headers: { ...linkHeaders('app-b'), 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_B}` } }));
    assert.equal(seenAtBroker.length, before, 'nothing reached the pipeline');
  });

  it('refuses a certificate from another CA in the TLS handshake, even with a valid token', async () => {
    const before = seenAtBroker.length;
    await assert.rejects(send(tlsPool(certs.foreign), '/v2/models/demo/infer', { body: INFER_BODY, headers: { ...linkHeaders('app-b'), 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_B}` } }));
    assert.equal(seenAtBroker.length, before, 'nothing reached the pipeline');
  });

  it('answers 401 to a valid certificate that names no proxy, and accepts a token over it', async () => {
    const pool = tlsPool(certs.stranger);
    const none = await send(pool, '/v2/models/demo/infer', { body: INFER_BODY, headers: linkHeaders('app-b') });
    assert.equal(none.status, 401, none.body);
    assert.equal(none.code, 'MG_UNAUTHENTICATED');
    assert.match(none.body, /stranger\.test/);
    const token = await send(pool, '/v2/models/demo/infer', { body: INFER_BODY, headers: { ...linkHeaders('app-b'), 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_T}` } });
    assert.equal(token.status, 200, token.body);
    const badToken = await send(pool, '/v2/models/demo/infer', { body: INFER_BODY, headers: { ...linkHeaders('app-b'), 'x-modelguard-proxy-authorization': 'Bearer nope' } });
    assert.equal(badToken.status, 401);
  });

  it('answers 403 when a certificate-identified proxy asserts an app it may not', async () => {
    const pool = tlsPool(certs.proxyA);
    const res = await send(pool, '/v2/models/demo/infer', { body: INFER_BODY, headers: linkHeaders('app-b') });
    assert.equal(res.status, 403, res.body);
    assert.equal(res.code, 'MG_FORBIDDEN');
    assert.match(res.body, /sidecar-a/);
    const ok = await send(pool, '/v2/models/demo/infer', { body: INFER_BODY, headers: linkHeaders('app-a') });
    assert.equal(ok.status, 200, ok.body);
  });

  it('identifies a certificate without DNS SANs by its CN, and requires a token sent with it to name the same proxy', async () => {
    const pool = tlsPool(certs.proxyB);
    const byCn = await send(pool, '/v2/models/demo/infer', { body: INFER_BODY, headers: linkHeaders('app-b') });
    assert.equal(byCn.status, 200, byCn.body);
    const same = await send(pool, '/v2/models/demo/infer', { body: INFER_BODY, headers: { ...linkHeaders('app-b'), 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_B}` } });
    assert.equal(same.status, 200, same.body);
    const other = await send(pool, '/v2/models/demo/infer', { body: INFER_BODY, headers: { ...linkHeaders('app-b'), 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_T}` } });
    assert.equal(other.status, 401, other.body);
    assert.equal(other.code, 'MG_UNAUTHENTICATED');
    assert.match(other.body, /token-only.*sidecar-b/);
  });

  it('fails plain http:// to the https broker listener clearly', async () => {
    const plainUrl = broker.linkUrl.replace(/^https:/, 'http:');
    const raw = new Pool(plainUrl, { connections: 1 });
    pools.push(raw);
    await assert.rejects(send(raw, '/_modelguard/ready', { headers: { 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_T}` } }));
    const plain = await startProxy(proxySnapshot(full, []), { broker: plainUrl, token: TOKEN_T, http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    try {
      assert.equal(await plain.remote.probe(), false, 'a plain proxy never sees its https broker as ready');
      const p = new Pool(plain.httpUrl);
      pools.push(p);
      const res = await send(p, '/v2/models/demo/infer', { key: keyFor('b'), body: INFER_BODY });
      assert.equal(res.status, 503, res.body);
      assert.equal(res.code, 'MG_NO_BACKEND');
      assert.match(res.body, /https:\/\/ broker URL/);
    } finally {
      await plain.close();
    }
  });

  it("uses a proxy's rotated client certificate files for new connections, once certificate and key match", async () => {
    const p = new Pool(proxy.httpUrl);
    pools.push(p);
    const flags = { tlsCert: join(dir, 'client.pem'), tlsKey: join(dir, 'client.key'), tlsCa: certs.ca };
    copyFileSync(certs.proxyA.cert, flags.tlsCert);
    copyFileSync(certs.proxyA.key, flags.tlsKey);
    const refused: string[] = [];
    const follower = followProxyTls(flags, broker.linkUrl, proxyTls(flags, broker.linkUrl)!, proxy.remote, { stop: async () => undefined }, 50, (err) => refused.push(String(err)));
    try {
      assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })).status, 200);
      // Half-way: sidecar-b's certificate with sidecar-a's key is refused; the proxy keeps working.
      copyFileSync(certs.proxyB.cert, flags.tlsCert);
      await waitFor(() => refused.length > 0, 'the half-written pair to be noticed');
      assert.match(refused[0]!, /do not make a TLS context/);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })).status);
      assert.deepEqual(statuses, [200, 200, 200]);
      // Now the proxy is sidecar-b (by its certificate), which may act for app-b only.
      copyFileSync(certs.proxyB.key, flags.tlsKey);
      let last = 0;
      await waitFor(() => {
        void send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY }).then((a) => (last = a.status));
        return last === 403;
      }, 'the proxy to present its new certificate');
      const before = seenAtBroker.length;
      assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('b'), body: INFER_BODY })).status, 200);
      await waitFor(() => seenAtBroker.length > before, 'the broker record');
      assert.equal(seenAtBroker.at(-1)!.app, 'app-b');
    } finally {
      await follower.stop();
      proxy.remote.useTls({ cert: readFileSync(certs.proxyA.cert), key: readFileSync(certs.proxyA.key), ca: readFileSync(certs.ca) });
    }
    assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })).status, 200);
  });

  it('serves rotated certificate files to new connections without a restart, and refuses bad ones', async () => {
    assert.equal(await servedFingerprint(), fingerprintOf(certs.broker.cert));
    const p = new Pool(proxy.httpUrl);
    pools.push(p);
    // In place, as cert-manager or a Secret update does: the files are followed on disk.
    copyFileSync(certs.broker2.key, serverKey());
    copyFileSync(certs.broker2.cert, serverCert());
    const second = fingerprintOf(certs.broker2.cert);
    let seen = '';
    await waitFor(() => {
      void servedFingerprint().then((fp) => (seen = fp));
      return seen === second;
    }, 'the rotated certificate to be served');
    assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })).status, 200, 'the proxy still reaches its broker');

    // A reload naming other files: read and installed with the new configuration.
    const moved = snapshotFor({
      endpoints: [{ url: model.url, slots: 2 }],
      groups: [{ name: 'a' }, { name: 'b' }],
      gateway: { brokerTls: { cert: certs.broker3.cert, key: certs.broker3.key, clientCa: certs.ca }, proxies: [{ name: 'sidecar-a', certificateNames: ['proxy-a.test'], apps: ['app-a'] }] },
    }, 2);
    broker.reload(brokerSnapshot(moved, 'node-1'));
    assert.equal(await servedFingerprint(), fingerprintOf(certs.broker3.cert));
    assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })).status, 200);
    // The new context still demands a client certificate from clientCa.
    await assert.rejects(send(tlsPool(undefined), '/_modelguard/ready', { headers: { 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_T}` } }));
    await assert.rejects(send(tlsPool(certs.foreign), '/_modelguard/ready', { headers: { 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_T}` } }));

    // A key that does not belong to the certificate, and turning TLS off, are refused; nothing changes.
    const bad = { ...moved, gateway: { ...moved.gateway, brokerTls: { cert: certs.broker2.cert, key: certs.broker3.key, clientCa: certs.ca } } };
    assert.throws(() => broker.reload(bad), /brokerTls.*key belongs to cert/);
    const { brokerTls: _off, ...plainGateway } = moved.gateway;
    assert.throws(() => broker.reload({ ...moved, gateway: plainGateway, version: 3 }), /brokerTls was removed.*restart/);
    assert.equal(broker.current.version, 2);
    assert.equal(await servedFingerprint(), fingerprintOf(certs.broker3.cert));
  });
});

describe('brokerTls configuration errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-mtls-cfg-'));
  const gateway = (name: string, spec: string[]): string => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, ['apiVersion: modelguard.io/v1alpha1', 'kind: Gateway', 'metadata: { name: default }', 'spec:', ...spec, ''].join('\n'));
    return file;
  };

  it('names file and line of a proxy with neither tokens nor certificateNames', async () => {
    const file = gateway('neither', ['  proxies:', '    - name: by-token', '      tokens: [{ sha256: ' + sha256Hex('t') + ' }]', '    - name: nothing', '      apps: []']);
    const err = await loadError(file);
    assertAt(issue(err.issues, 'proxy "nothing" has neither tokens nor certificateNames'), file, 8, undefined, /certificateNames: \[/);
    assert.equal(err.issues.length, 1, err.format());
  });

  it('names file and line of certificateNames without brokerTls', async () => {
    const file = gateway('no-tls', ['  proxies:', '    - name: by-cert', '      certificateNames:', '        - proxy-a.test']);
    const err = await loadError(file);
    assertAt(issue(err.issues, 'certificate name "proxy-a.test" needs spec.brokerTls'), file, 8, undefined, /spec\.brokerTls: \{ cert, key, clientCa \}/);
    assert.equal(err.issues.length, 1, err.format());
  });

  it('refuses a certificate name listed for two proxies (case-insensitively), and wildcards', async () => {
    const tls = '  brokerTls: { cert: /etc/mg/broker.pem, key: /etc/mg/broker.key, clientCa: /etc/mg/ca.pem }';
    const twice = gateway('twice', [tls, '  proxies:', '    - { name: one, certificateNames: [proxy.test] }', '    - { name: two, certificateNames: [PROXY.test] }']);
    const err = await loadError(twice);
    assertAt(issue(err.issues, 'is already listed for proxy "one"'), twice, 8, undefined, /its own certificate/);
    const wild = gateway('wild', [tls, '  proxies:', '    - { name: three, certificateNames: ["*.test"] }']);
    assertAt(issue((await loadError(wild)).issues, 'without spaces or wildcards'), wild, 7, undefined, /DNS SAN or the CN/);
  });
});

describe('proxy TLS flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-mtls-cli-'));
  const selfSigned = (name: string): Pems => {
    const pems = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', pems.key, '-out', pems.cert, '-days', '1', '-subj', `/CN=${name}`], { stdio: 'ignore' });
    return pems;
  };

  it('reads the client certificate for an https:// broker, and refuses flags that do not fit the URL or each other', () => {
    const one = selfSigned('one');
    const two = selfSigned('two');
    const tls = proxyTls({ tlsCert: one.cert, tlsKey: one.key, tlsCa: two.cert, tlsServerName: 'box-b' }, 'https://10.0.0.5:8010');
    assert.deepEqual([tls?.cert.equals(readFileSync(one.cert)), tls?.key.equals(readFileSync(one.key)), tls?.ca?.equals(readFileSync(two.cert)), tls?.servername], [true, true, true, 'box-b']);
    assert.equal(proxyTls({}, 'http://10.0.0.5:8010'), undefined);
    assert.throws(() => proxyTls({}, 'https://10.0.0.5:8010'), /requires a client certificate: give --tls-cert and --tls-key/);
    assert.throws(() => proxyTls({ tlsCert: one.cert, tlsKey: one.key }, 'http://10.0.0.5:8010'), /--tls-cert needs an https:\/\/ broker URL/);
    assert.throws(() => proxyTls({ tlsCert: one.cert }, 'https://10.0.0.5:8010'), /--tls-cert and --tls-key go together/);
    assert.throws(() => proxyTls({ tlsCert: one.cert, tlsKey: join(dir, 'missing.pem') }, 'https://10.0.0.5:8010'), /--tls-key .*missing\.pem/);
    assert.throws(() => proxyTls({ tlsCert: one.cert, tlsKey: two.key }, 'https://10.0.0.5:8010'), /do not make a TLS context.*key belongs to the certificate/);
  });
});
