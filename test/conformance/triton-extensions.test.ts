/**
 * Triton's REST extensions beyond inference (model repository, statistics, trace, logging, system
 * and CUDA shared memory, model configuration, generate), at the paths Triton's protocol documents
 * give: each is governed explicitly. An app without the permission the table names gets 403
 * MG_FORBIDDEN; one with it reaches the model's backend at the same path; a server-wide path
 * without X-ModelGuard-Model is 400 saying so. None is an accidental 404 or pass.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { accelerator, gateway, keyFor, send } from '../helpers/harness.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { TRITON_REST_EXTENSIONS } from '../../src/adapters/http/extensions.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import type { Gateway } from '../../src/compose/gateway.ts';

const API = 'modelguard.io/v1alpha1';
const ADMIN = 'key-admin';

/** A concrete path for a table entry, with the model `alias` (backend model `demo`) and region `r1`; a versioned one too. */
function concrete(pattern: string, model: string, versioned: boolean): string {
  return '/v2/' + pattern.replace('{model}', model).replace('/{version}', versioned ? '/versions/1' : '').replace('{region}', 'r1');
}

describe('Triton REST extensions: governed explicitly', () => {
  let demo: ModelServer;
  let gw: Gateway;
  let p: Pool;
  before(async () => {
    demo = await accelerator({ models: ['demo'] });
    gw = await gateway({
      endpoints: [{ url: demo.url, slots: 2 }],
      models: ['demo'],
      groups: [{ name: 'g' }],
      extra: [
        { apiVersion: API, kind: 'Model', metadata: { name: 'alias' }, spec: { backend: 'accel', backendModel: 'demo' } },
        { apiVersion: API, kind: 'App', metadata: { name: 'ops' }, spec: { serviceGroup: 'g', operations: ['infer', 'metadata', 'admin'], apiKeys: [{ sha256: sha256Hex(ADMIN) }] } },
      ],
    });
    p = new Pool(gw.httpUrl, { connections: 2 });
  });
  after(async () => {
    await p.close();
    await gw.close();
    await demo.close();
  });

  for (const ext of TRITON_REST_EXTENSIONS) {
    for (const versioned of ext.path.includes('{version}') ? [false, true] : [false]) {
      const path = concrete(ext.path, 'alias', versioned);
      const method = ext.methods.includes('POST') ? 'POST' : 'GET';
      const serverWide = !ext.path.includes('{model}');
      const target = serverWide ? { 'x-modelguard-model': 'alias' } : {};
      it(`${method} ${path} (${ext.extension}) needs ${ext.permission}`, async () => {
        const body = method === 'POST' ? '{}' : undefined;
        if (serverWide) {
          const bare = await send(p, path, { key: ADMIN, method, ...(body === undefined ? {} : { body }) });
          assert.equal(bare.status, 400, bare.body);
          assert.match(bare.body, /X-ModelGuard-Model/i);
        }
        if (ext.permission === 'admin') {
          const refused = await send(p, path, { key: keyFor('g'), method, headers: target, ...(body === undefined ? {} : { body }) });
          assert.equal(refused.status, 403, refused.body);
          assert.equal(refused.code, 'MG_FORBIDDEN');
        }
        demo.resetStats();
        const allowed = await send(p, path, { key: ADMIN, method, headers: target, ...(body === undefined ? {} : { body }) });
        assert.notEqual(allowed.status, 403);
        assert.equal(allowed.code, undefined, `no ModelGuard refusal: ${allowed.body}`);
        const expected = concrete(ext.path, 'demo', versioned);
        assert.ok(demo.requests().some((r) => r.url === expected && r.method === method), `the backend received ${method} ${expected}`);
        assert.ok(!demo.requests().some((r) => 'x-modelguard-model' in r.headers), 'X-ModelGuard-Model is not forwarded');
      });
    }
  }

  it('a wrong method on an extension path is 405 with Allow, not a pass', async () => {
    const r = await send(p, '/v2/repository/index', { key: ADMIN, method: 'DELETE', headers: { 'x-modelguard-model': 'alias' } });
    assert.equal(r.status, 405);
  });
});
