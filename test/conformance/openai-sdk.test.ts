/**
 * The official `openai` npm SDK against ModelGuard, as an application would use it: the calls of
 * OpenAI's API reference (models list and retrieve, chat, streamed chat, completions, embeddings)
 * and the SDK's error classes for ModelGuard's refusals (401, 403, 404, 429), which the SDK picks
 * from the status and reads from OpenAI's error shape. The alias cases run again through a proxy and
 * a broker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { AuthenticationError, InternalServerError, NotFoundError, PermissionDeniedError, RateLimitError } from 'openai';
import { accelerator, gateway, keyFor, snapshotFor, waitFor } from '../helpers/harness.ts';
import { brokerSnapshot, proxySnapshot } from '../../src/config/partition.ts';
import { startBroker, startProxy, type BrokerRole, type ProxyRole } from '../../src/compose/roles.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import type { Gateway } from '../../src/compose/gateway.ts';

const API = 'modelguard.io/v1alpha1';

describe('official openai SDK through ModelGuard', () => {
  let demo: ModelServer;
  let gw: Gateway;
  const client = (apiKey: string): OpenAI => new OpenAI({ apiKey, baseURL: `${gw.httpUrl}/v1`, maxRetries: 0, timeout: 10_000 });

  before(async () => {
    demo = await accelerator({ models: ['llm'], tokenMs: 0, completionTokens: 4 });
    gw = await gateway({
      endpoints: [{ url: demo.url, slots: 2 }],
      models: [],
      groups: [{ name: 'g' }],
      backend: { protocol: 'openai' },
      extra: [
        { apiVersion: API, kind: 'Model', metadata: { name: 'llm' }, spec: { backend: 'accel' } },
        // An alias: the client says `edge-chat`, the server knows `llm`.
        { apiVersion: API, kind: 'Model', metadata: { name: 'edge-chat' }, spec: { backend: 'accel', backendModel: 'llm' } },
        { apiVersion: API, kind: 'Model', metadata: { name: 'private-llm' }, spec: { backend: 'accel', backendModel: 'llm', visibility: 'private' } },
        { apiVersion: API, kind: 'App', metadata: { name: 'limited' }, spec: { serviceGroup: 'g', rateLimit: { requestsPerSecond: 0.01, burst: 1 }, apiKeys: [{ sha256: sha256Hex('key-limited') }] } },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await demo.close();
  });

  it('models.list and models.retrieve', async () => {
    const oa = client(keyFor('g'));
    const ids = [];
    for await (const m of oa.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['edge-chat', 'llm']);
    const m = await oa.models.retrieve('edge-chat');
    assert.equal(m.id, 'edge-chat');
    assert.equal(m.object, 'model');
  });

  it('chat.completions.create answers with the model name the client asked for (an alias)', async () => {
    const oa = client(keyFor('g'));
    const r = await oa.chat.completions.create({ model: 'edge-chat', messages: [{ role: 'user', content: 'hello' }], max_tokens: 3 });
    assert.equal(r.model, 'edge-chat');
    assert.equal(r.object, 'chat.completion');
    assert.equal(typeof r.choices[0]?.message.content, 'string');
    assert.ok((r.usage?.total_tokens ?? 0) > 0);
    const direct = await oa.chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 3 });
    assert.equal(direct.model, 'llm');
  });

  it('streamed chat: every chunk, the alias in each, and the end of the stream', async () => {
    const oa = client(keyFor('g'));
    const stream = await oa.chat.completions.create({ model: 'edge-chat', messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 4 });
    let text = '';
    const models = new Set<string>();
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      models.add(chunk.model);
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.deepEqual([...models], ['edge-chat']);
    assert.ok(text.length > 0);
    assert.ok(finish === 'length' || finish === 'stop', String(finish));
  });

  it('completions and embeddings', async () => {
    const oa = client(keyFor('g'));
    const c = await oa.completions.create({ model: 'edge-chat', prompt: 'say', max_tokens: 2 });
    assert.equal(c.model, 'edge-chat');
    assert.equal(typeof c.choices[0]?.text, 'string');
    const e = await oa.embeddings.create({ model: 'edge-chat', input: ['a', 'b'] });
    assert.equal(e.model, 'edge-chat');
    assert.equal(e.data.length, 2);
    assert.ok(e.data.every((d) => d.embedding.length > 0 && d.embedding.every(Number.isFinite)));
  });

  it('ModelGuard refusals raise the SDK\'s own error classes, with OpenAI\'s error shape', async () => {
    const auth = await client('wrong-key').models.list().then(() => undefined, (e: unknown) => e);
    assert.ok(auth instanceof AuthenticationError, String(auth));
    assert.equal(auth.status, 401);
    assert.equal(auth.code, 'MG_UNAUTHENTICATED');
    assert.equal(auth.type, 'authentication_error');

    const forbidden = await client(keyFor('g')).chat.completions.create({ model: 'private-llm', messages: [{ role: 'user', content: 'x' }] }).then(() => undefined, (e: unknown) => e);
    assert.ok(forbidden instanceof PermissionDeniedError, String(forbidden));
    assert.equal(forbidden.code, 'MG_FORBIDDEN');

    const missing = await client(keyFor('g')).models.retrieve('no-such-model').then(() => undefined, (e: unknown) => e);
    assert.ok(missing instanceof NotFoundError, String(missing));
    assert.equal(missing.code, 'MG_MODEL_NOT_FOUND');
    const missingChat = await client(keyFor('g')).chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }).then(() => undefined, (e: unknown) => e);
    assert.ok(missingChat instanceof NotFoundError, String(missingChat));

    const limited = client('key-limited');
    await limited.chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
    const rate = await limited.chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }).then(() => undefined, (e: unknown) => e);
    assert.ok(rate instanceof RateLimitError, String(rate));
    assert.equal(rate.code, 'MG_RATE_LIMITED');
    assert.ok(Number(rate.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
  });

  it('no healthy backend: 503 in OpenAI\'s shape, the SDK\'s InternalServerError with the MG code', async () => {
    await demo.stop();
    try {
      const oa = client(keyFor('g'));
      // The first call finds the replica refusing connections and ejects it; every call after it is MG_NO_BACKEND.
      const errors: unknown[] = [];
      for (let i = 0; i < 2; i++) errors.push(await oa.chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'x' }] }).then(() => undefined, (e: unknown) => e));
      const last = errors[1];
      assert.ok(last instanceof InternalServerError, String(last));
      assert.equal(last.status, 503);
      assert.equal(last.code, 'MG_NO_BACKEND');
      assert.equal(last.type, 'server_error');
    } finally {
      await demo.restart();
    }
  });
});

describe('official openai SDK through a proxy and a broker (separate roles)', () => {
  // The broker's exchange names an alias's answer; the proxy passes it on as it came (the
  // RemoteBroker answers as asked): the client must still see its own name, in every chunk.
  const TOKEN = 'openai-roles-proxy-token';
  let demo: ModelServer;
  let broker: BrokerRole;
  let proxy: ProxyRole;
  const client = (): OpenAI => new OpenAI({ apiKey: keyFor('g'), baseURL: `${proxy.httpUrl}/v1`, maxRetries: 0, timeout: 10_000 });

  before(async () => {
    demo = await accelerator({ models: ['llm'], tokenMs: 0, completionTokens: 4 });
    const full = snapshotFor({
      endpoints: [{ url: demo.url, slots: 2 }],
      models: [],
      groups: [{ name: 'g' }],
      backend: { protocol: 'openai' },
      gateway: { proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex(TOKEN) }] }] },
      extra: [{ apiVersion: API, kind: 'Model', metadata: { name: 'edge-chat' }, spec: { backend: 'accel', backendModel: 'llm' } }],
    });
    broker = await startBroker(brokerSnapshot(full, 'n1'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
    proxy = await startProxy(proxySnapshot(full, []), { broker: broker.linkUrl, token: TOKEN, http: '127.0.0.1:0', admin: '127.0.0.1:0' });
    await waitFor(() => proxy.pipeline.ready() && broker.pipeline.ready(), 'proxy and broker ready');
  });
  after(async () => {
    await proxy.close();
    await broker.close();
    await demo.close();
  });

  it('chat and streamed chat name the alias the client asked for', async () => {
    const oa = client();
    const r = await oa.chat.completions.create({ model: 'edge-chat', messages: [{ role: 'user', content: 'hello' }], max_tokens: 3 });
    assert.equal(r.model, 'edge-chat');
    const stream = await oa.chat.completions.create({ model: 'edge-chat', messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 4 });
    const models = new Set<string>();
    let chunks = 0;
    for await (const chunk of stream) {
      models.add(chunk.model);
      chunks++;
    }
    assert.ok(chunks >= 2, `${chunks} chunks`);
    assert.deepEqual([...models], ['edge-chat']);
  });
});
