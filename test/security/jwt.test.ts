/**
 * JWT identities through the real HTTP listener: tokens signed by a test identity provider (jose),
 * keys from a JWKS file or a JWKS URL on loopback; every way a token can be wrong is refused with
 * MG_UNAUTHENTICATED before anything reaches the model server.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { startGateway, type Gateway } from '../../src/compose/gateway.ts';
import { listen, closeServer } from '../../src/net/listen.ts';
import type { RequestRecord } from '../../src/core/events.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, INFER_BODY, pool, send, snapshotFor } from '../helpers/harness.ts';

const ISSUER = 'https://idp.test';
const AUDIENCE = 'modelguard';

describe('JWT identities', () => {
  let model: ModelServer;
  let gw: Gateway;
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  let ec: { privateKey: CryptoKey; publicKey: CryptoKey };
  let stranger: { privateKey: CryptoKey; publicKey: CryptoKey };
  let jwksServer: http.Server;
  let jwksUrl: string;
  let jwksFetches = 0;
  const records: RequestRecord[] = [];
  let jwksFile: string;

  const sign = (key: CryptoKey, alg: string, kid: string, claims: Record<string, unknown> = {}, opts: { exp?: string; iss?: string; aud?: string } = {}): Promise<string> =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg, kid })
      .setIssuer(opts.iss ?? ISSUER)
      .setAudience(opts.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(key);

  const setup = (jwt: Record<string, unknown>) =>
    snapshotFor({
      endpoints: [{ url: model.url, slots: 2 }],
      models: ['demo', 'private-demo'],
      groups: [{ name: 'a' }, { name: 'b' }],
      gateway: { jwt: { issuer: ISSUER, audience: AUDIENCE, ...jwt } },
      extra: [],
    });

  before(async () => {
    model = await accelerator({ slots: 2, serviceTime: 1, models: ['demo', 'private-demo'] });
    rsa = await generateKeyPair('RS256');
    ec = await generateKeyPair('ES256');
    stranger = await generateKeyPair('RS256');
    const jwks = { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }, { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' }] };
    jwksFile = join(mkdtempSync(join(tmpdir(), 'mg-jwt-')), 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify(jwks));
    jwksServer = http.createServer((_req, res) => {
      jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(jwks));
    });
    jwksUrl = await listen(jwksServer, '127.0.0.1:0');
    gw = await startGateway(setup({ jwksFile }), { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    gw.pipeline.events.subscribe((r) => records.push(r));
  });

  after(async () => {
    await gw.close();
    await closeServer(jwksServer);
    await model.close();
  });

  it('accepts a valid RS256 or ES256 token naming an app, and the app gets its own group', async () => {
    const p = pool(gw.httpUrl);
    for (const [key, alg, kid, app] of [
      [rsa.privateKey, 'RS256', 'rsa-1', 'app-a'],
      [ec.privateKey, 'ES256', 'ec-1', 'app-b'],
    ] as const) {
      const token = await sign(key, alg, kid, { sub: app });
      const res = await send(p, '/v2/models/demo/infer', { key: token, body: INFER_BODY });
      assert.equal(res.status, 200, res.body);
      const rec = records.at(-1)!;
      assert.equal(rec.app, app);
      assert.equal(rec.group, app.slice(-1));
    }
    await p.close();
  });

  it('refuses every kind of bad token with 401 MG_UNAUTHENTICATED, and the model server sees none', async () => {
    const p = pool(gw.httpUrl);
    const before = model.stats().models['demo']?.served ?? 0;
    const header = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const payload = header({ sub: 'app-a', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 });
    const bad: Record<string, string> = {
      expired: await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: 'app-a' }, { exp: '-2m' }),
      'wrong issuer': await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: 'app-a' }, { iss: 'https://evil.test' }),
      'wrong audience': await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: 'app-a' }, { aud: 'someone-else' }),
      'unknown signer': await sign(stranger.privateKey, 'RS256', 'rsa-1', { sub: 'app-a' }),
      'unknown app': await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: 'app-zzz' }),
      'no app claim': await sign(rsa.privateKey, 'RS256', 'rsa-1', {}),
      'alg none': `${header({ alg: 'none', kid: 'rsa-1' })}.${payload}.`,
      'HMAC with the public key as secret': `${header({ alg: 'HS256', kid: 'rsa-1' })}.${payload}.c2lnbmF0dXJl`,
      'tampered payload': (await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: 'app-b' })).replace(/\.[^.]+\./, `.${payload}.`),
    };
    for (const [what, token] of Object.entries(bad)) {
      const res = await send(p, '/v2/models/demo/infer', { key: token, body: INFER_BODY });
      assert.equal(res.status, 401, `${what}: ${res.status} ${res.body}`);
      assert.equal(res.code, 'MG_UNAUTHENTICATED', what);
      assert.ok(!res.body.includes(token.slice(-20)), `${what}: the answer does not echo the token`);
    }
    assert.equal(model.stats().models['demo']?.served ?? 0, before);
    await p.close();
  });

  it('grants still apply: a valid token for an app not granted a private model gets 403', async () => {
    gw.reload(
      snapshotFor(
        {
          endpoints: [{ url: model.url, slots: 2 }],
          models: ['demo'],
          groups: [{ name: 'a' }, { name: 'b' }],
          gateway: { jwt: { issuer: ISSUER, audience: AUDIENCE, jwksFile } },
          extra: [{ apiVersion: 'modelguard.io/v1alpha1', kind: 'Model', metadata: { name: 'private-demo' }, spec: { backend: 'accel', visibility: 'private' } }],
        },
        2,
      ),
    );
    const p = pool(gw.httpUrl);
    const res = await send(p, '/v2/models/private-demo/infer', { key: await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: 'app-a' }), body: INFER_BODY });
    assert.equal(res.status, 403);
    assert.equal(res.code, 'MG_FORBIDDEN');
    await p.close();
  });

  it('fetches keys from a JWKS URL once and serves many requests from the cache', async () => {
    gw.reload(setup({ jwksUrl }));
    const p = pool(gw.httpUrl);
    const token = await sign(ec.privateKey, 'ES256', 'ec-1', { sub: 'app-a' });
    const answers = await Promise.all(Array.from({ length: 20 }, () => send(p, '/v2/models/demo/infer', { key: token, body: INFER_BODY })));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(jwksFetches, 1);
    // Reloading the same JWT settings keeps the fetched keys.
    gw.reload(snapshotFor({ endpoints: [{ url: model.url, slots: 3 }], models: ['demo', 'private-demo'], groups: [{ name: 'a' }, { name: 'b' }], gateway: { jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUrl } } }, 3));
    assert.equal((await send(p, '/v2/models/demo/infer', { key: token, body: INFER_BODY })).status, 200);
    assert.equal(jwksFetches, 1);
    await p.close();
  });

  it('API keys keep working beside JWTs', async () => {
    const p = pool(gw.httpUrl);
    const res = await send(p, '/v2/models/demo/infer', { key: 'key-a', body: INFER_BODY });
    assert.equal(res.status, 200, res.body);
    await p.close();
  });
});
