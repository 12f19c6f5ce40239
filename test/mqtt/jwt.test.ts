// JWT identities over MQTT: a token in the request (payload `apiKey` for 3.1.1) is resolved like an
// HTTP bearer token; at CONNECT of the embedded broker only API keys count.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startGateway } from '../../src/compose/gateway.ts';
import { accelerator, INFER_BODY, snapshotFor, waitFor } from '../helpers/harness.ts';
import { Caller, errorCode } from './helpers.ts';

const INFER = JSON.parse(INFER_BODY) as Record<string, unknown>;
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

it('a JWT in the request identifies the app; a bad one gets MG_UNAUTHENTICATED; a JWT is no CONNECT password', { timeout: 20_000 }, async () => {
  const rsa = await generateKeyPair('RS256');
  const jwksFile = join(mkdtempSync(join(tmpdir(), 'mg-mqtt-jwt-')), 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] }));
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('app-a').setIssuer('https://idp.test').setAudience('modelguard').setIssuedAt().setExpirationTime('5m').sign(rsa.privateKey);
  const acc = await accelerator({ slots: 1 });
  closers.push(() => acc.close());
  const gw = await startGateway(
    snapshotFor({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }], gateway: { mqtt: { embedded: true }, jwt: { issuer: 'https://idp.test', audience: 'modelguard', jwksFile } } }),
    { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', mqtt: 'mqtt://127.0.0.1:0' },
  );
  closers.push(() => gw.close());
  const apps: (string | undefined)[] = [];
  gw.pipeline.events.subscribe((r) => apps.push(r.app));
  // A JWT works as the CONNECT password (the device then reads its app's replies) …
  const dev = await Caller.create(gw.mqttUrl ?? '', 4, { username: 'app-a', password: token });
  closers.push(() => dev.close());
  assert.equal(errorCode(await dev.request('demo', INFER)), undefined);
  await waitFor(() => apps.length > 0, 'the request record');
  assert.equal(apps.at(-1), 'app-a');
  // … and per request; a forged one is refused either way.
  assert.equal(errorCode(await dev.request('demo', INFER, { key: token })), undefined);
  assert.equal(errorCode(await dev.request('demo', INFER, { key: `${token.slice(0, -4)}AAAA` })), 'MG_UNAUTHENTICATED');
  await assert.rejects(Caller.create(gw.mqttUrl ?? '', 4, { username: 'app-a', password: `${token.slice(0, -4)}AAAA` }), /Bad username or password/i);
  // An anonymous device may use a JWT per request, but the answer is never put where any device can read it.
  const anon = await Caller.create(gw.mqttUrl ?? '', 4);
  closers.push(() => anon.close());
  assert.equal(errorCode(await anon.request('demo', INFER, { key: token })), 'MG_FORBIDDEN');
});
