/**
 * Offload targets other than a plain KServe server: another ModelGuard (the cloud gateway, reached
 * with an app key as the link's bearer token) and an OpenAI-compatible server (the model renamed in
 * the JSON body). Both with the edge down, so every request fails over.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import { compileResources } from '../../src/config/index.ts';
import { startGateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator } from '../helpers/harness.ts';
import { infer, KEY, newPool, offloadResources } from './helpers.ts';

describe('offload targets', () => {
  let edge: ModelServer;
  let cloudModels: ModelServer;
  let cloudGw: Gateway;
  let gw: Gateway;
  let pool: Pool;
  const ENV = `MG_TEST_CLOUD_GW_KEY_${process.pid}`;

  before(async () => {
    edge = await accelerator({ slots: 1, models: ['demo', 'chat'] });
    await edge.stop();
    cloudModels = await accelerator({ slots: 4, models: ['demo-xl', 'big-llm'] });
    // The cloud: another ModelGuard in front of its model server, with its own app and key.
    cloudGw = await startGateway(
      compileResources(offloadResources({ edge: [{ url: cloudModels.url, slots: 4 }], cloud: [{ url: cloudModels.url, slots: 1 }], models: [{ name: 'demo-xl' }] }), { version: 1 }).snapshot,
      { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' },
    );
    process.env[ENV] = KEY;
    const resources = offloadResources({
      edge: [{ url: edge.url, slots: 1 }],
      cloud: [{ url: cloudGw.httpUrl, slots: 4 }],
      cloudSpec: { credentials: { env: ENV } },
      models: [{ name: 'demo', offload: { when: 'failover', backendModel: 'demo-xl' } }],
    });
    const API = 'modelguard.io/v1alpha1';
    resources.push(
      { apiVersion: API, kind: 'Backend', metadata: { name: 'edge-llm' }, spec: { protocol: 'openai', endpoints: [{ url: edge.url }], healthCheck: { interval: '100ms', timeout: '80ms' } } },
      { apiVersion: API, kind: 'Backend', metadata: { name: 'cloud-llm' }, spec: { protocol: 'openai', endpoints: [{ url: cloudModels.url, slots: 4 }] } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'chat' }, spec: { backend: 'edge-llm', offload: { backend: 'cloud-llm', when: 'failover', backendModel: 'big-llm' } } },
    );
    gw = await startGateway(compileResources(resources, { version: 1 }).snapshot, { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    pool = newPool(gw.httpUrl);
  });
  after(async () => {
    await pool.close();
    await gw.close();
    await cloudGw.close();
    await edge.close();
    await cloudModels.close();
    delete process.env[ENV];
  });

  it('offloads to another ModelGuard, authenticated by the link credential, under the cloud model name', async () => {
    const r = await infer(pool, 'demo');
    assert.equal(r.status, 200, `${r.code} ${r.body}`);
    assert.equal(r.servedBy, 'cloud');
    // Sent to the cloud as demo-xl (below); answered under the name the client asked for.
    assert.match(r.body, /"model_name":"demo"/);
    const seen = cloudModels.requests().filter((q) => q.method === 'POST');
    assert.deepEqual(seen.map((q) => q.url), ['/v2/models/demo-xl/infer']);
    // The cloud gateway identified us by the link's key; it did not forward it to its model server.
    assert.equal(seen[0]?.headers['authorization'], undefined);
  });

  it('offloads an OpenAI chat completion with the model renamed in the body', async () => {
    const res = await pool.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }),
    });
    const body = (await res.body.json()) as { model: string; choices: unknown[] };
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-modelguard-served-by'], 'cloud');
    // The cloud answered as big-llm; the client reads the model it asked for.
    assert.equal(body.model, 'chat');
    assert.equal(body.choices.length, 1);
  });
});
