// The HTTP surface: KServe v2, OpenAI-compatible and pass-through calls, identity, grants, limits,
// and every malformed input answered with its DESIGN.md code without harming the process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, gateway, keyFor, pool, send, INFER_BODY } from '../helpers/harness.ts';

const API = 'modelguard.io/v1alpha1';
let acc: ModelServer;
let gw: Gateway;
let p: ReturnType<typeof pool>;
const INFER = '/v2/models/demo/infer';

before(async () => {
  acc = await accelerator({ slots: 2, serviceTime: 1, models: ['demo', 'secret'], tokenMs: 15 });
  gw = await gateway({
    endpoints: [{ url: acc.url, slots: 2 }],
    models: ['demo'],
    groups: [{ name: 'a' }, { name: 'b' }],
    gateway: { maxBodySize: '1Ki' },
    extra: [
      { apiVersion: API, kind: 'Model', metadata: { name: 'secret' }, spec: { backend: 'accel', visibility: 'private' } },
      { apiVersion: API, kind: 'Backend', metadata: { name: 'llm-server' }, spec: { protocol: 'openai', endpoints: [{ url: acc.url, slots: 2 }], healthCheck: { interval: '1s', timeout: '500ms' } } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'chat' }, spec: { backend: 'llm-server', backendModel: 'demo' } },
      { apiVersion: API, kind: 'App', metadata: { name: 'granted' }, spec: { serviceGroup: 'a', models: ['secret'], apiKeys: [{ sha256: 'a'.repeat(64) }] } },
      { apiVersion: API, kind: 'App', metadata: { name: 'limited' }, spec: { serviceGroup: 'b', apiKeys: [{ sha256: sha('key-limited') }], rateLimit: { requestsPerSecond: 2, burst: 2 } } },
      { apiVersion: API, kind: 'App', metadata: { name: 'owner' }, spec: { serviceGroup: 'a', models: ['secret'], apiKeys: [{ sha256: sha('key-owner') }] } },
    ],
  });
  p = pool(gw.httpUrl);
});
after(async () => {
  await p.close();
  await gw.close();
  await acc.close();
});

function sha(k: string): string {
  return createHash('sha256').update(k).digest('hex');
}

test('KServe v2: health, server and model metadata, readiness, infer', async () => {
  assert.equal((await send(p, '/v2/health/live')).status, 200);
  assert.equal((await send(p, '/v2/health/ready')).status, 200);
  const meta = JSON.parse((await send(p, '/v2')).body) as { name: string };
  assert.equal(meta.name, 'modelguard');
  const model = await send(p, '/v2/models/demo', { key: keyFor('a') });
  assert.equal(model.status, 200);
  assert.equal((JSON.parse(model.body) as { name: string }).name, 'demo');
  assert.equal((await send(p, '/v2/models/demo/versions/1/ready', { key: keyFor('a') })).status, 200);
  const r = await send(p, INFER, { key: keyFor('a'), body: INFER_BODY });
  assert.equal(r.status, 200);
  assert.ok(Array.isArray((JSON.parse(r.body) as { outputs: unknown[] }).outputs));
});

test('identity: missing or unknown key → 401; X-API-Key works; identity headers never reach the backend', async () => {
  const none = await send(p, INFER, { body: INFER_BODY });
  assert.equal(none.status, 401);
  assert.equal(none.code, 'MG_UNAUTHENTICATED');
  assert.equal((await send(p, INFER, { key: 'nope', body: INFER_BODY })).status, 401);
  const viaHeader = await send(p, INFER, { body: INFER_BODY, headers: { 'x-api-key': keyFor('a'), 'x-service-group': 'b', 'x-request-id': 'hdr-check' } });
  assert.equal(viaHeader.status, 200);
  const seen = acc.requests().find((r) => r.requestId === 'hdr-check');
  assert.ok(seen);
  for (const h of ['authorization', 'x-api-key', 'x-service-group']) assert.equal(seen.headers[h], undefined, `${h} stripped`);
  // Two different keys in one request are refused, not resolved in someone's favour.
  const clash = await send(p, INFER, { key: keyFor('a'), body: INFER_BODY, headers: { 'x-api-key': keyFor('b') } });
  assert.equal(clash.status, 401);
});

test('private models: 403 MG_FORBIDDEN unless granted; hidden from /v1/models', async () => {
  const body = INFER_BODY;
  const denied = await send(p, '/v2/models/secret/infer', { key: keyFor('a'), body });
  assert.equal(denied.status, 403);
  assert.equal(denied.code, 'MG_FORBIDDEN');
  assert.equal((await send(p, '/v2/models/secret', { key: keyFor('a') })).status, 403, 'metadata too');
  assert.equal((await send(p, '/v2/models/secret/infer', { key: 'key-owner', body })).status, 200);
  const listA = JSON.parse((await send(p, '/v1/models', { key: keyFor('a') })).body) as { data: { id: string }[] };
  const listOwner = JSON.parse((await send(p, '/v1/models', { key: 'key-owner' })).body) as { data: { id: string }[] };
  assert.ok(!listA.data.some((m) => m.id === 'secret'));
  assert.ok(listOwner.data.some((m) => m.id === 'secret'));
});

test('malformed input → DESIGN.md codes, and the process keeps serving', async () => {
  const cases: [string, Parameters<typeof send>[2], number, string][] = [
    [INFER, { key: keyFor('a'), body: '{"inputs": [' }, 400, 'MG_BAD_REQUEST'],
    [INFER, { key: keyFor('a'), body: '{"nothing": 1}' }, 400, 'MG_BAD_REQUEST'],
    ['/v2/models/nope/infer', { key: keyFor('a'), body: INFER_BODY }, 404, 'MG_MODEL_NOT_FOUND'],
    [INFER, { key: keyFor('a') }, 405, 'MG_BAD_REQUEST'],
    ['/v2/models/%2e%2e/infer', { key: keyFor('a'), body: INFER_BODY }, 400, 'MG_BAD_REQUEST'],
    ['/v2/models/demo%2f..%2fx/infer', { key: keyFor('a'), body: INFER_BODY }, 400, 'MG_BAD_REQUEST'],
    ['/nowhere', { key: keyFor('a') }, 404, 'MG_BAD_REQUEST'],
    [INFER, { key: keyFor('a'), body: JSON.stringify({ inputs: [], pad: 'x'.repeat(2000) }) }, 413, 'MG_TOO_LARGE'],
    [INFER, { key: keyFor('a'), body: INFER_BODY, headers: { 'x-request-timeout': '-5ms' } }, 400, 'MG_BAD_REQUEST'],
    ['/v1/chat/completions', { key: keyFor('a'), body: '{"messages": []}' }, 400, 'MG_BAD_REQUEST'],
    ['/v1/chat/completions', { key: keyFor('a'), body: '[1,2]' }, 400, 'MG_BAD_REQUEST'],
    ['/v1/chat/completions', { key: keyFor('a'), body: '{"model": "ghost", "messages": []}' }, 404, 'MG_MODEL_NOT_FOUND'],
  ];
  for (const [path, opts, status, code] of cases) {
    const r = await send(p, path, opts);
    assert.equal(r.status, status, `${path} ${opts?.body?.slice(0, 30)} → ${r.status} ${r.body}`);
    assert.equal(r.code, code, path);
    assert.ok(r.body.includes(code), 'code in the body too');
  }
  const wrong = await send(p, INFER, { key: keyFor('a') });
  assert.equal(wrong.status, 405);
  // A body over the limit sent without Content-Length (chunked) is cut off while reading.
  const chunked = await request(`${gw.httpUrl}${INFER}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyFor('a')}` },
    body: Readable.from(
      (function* () {
        for (let i = 0; i < 10; i++) yield Buffer.alloc(200, 32);
      })(),
    ),
  });
  assert.equal(chunked.statusCode, 413);
  await chunked.body.dump();
  // OpenAI errors use OpenAI's error shape.
  const oa = JSON.parse((await send(p, '/v1/chat/completions', { key: keyFor('a'), body: '{}' })).body) as { error: { code: string; type: string } };
  assert.equal(oa.error.code, 'MG_BAD_REQUEST');
  assert.equal(oa.error.type, 'invalid_request_error');
  assert.equal((await send(p, INFER, { key: keyFor('a'), body: INFER_BODY })).status, 200);
});

test('app rate limit → 429 MG_RATE_LIMITED with Retry-After: the true time to the next token', async () => {
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await send(p, INFER, { key: 'key-limited', body: INFER_BODY }));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 429, 429]);
  assert.equal(answers[2]!.code, 'MG_RATE_LIMITED');
  assert.equal(answers[2]!.retryAfter, '1');
  const res = await request(`${gw.httpUrl}${INFER}`, { method: 'POST', headers: { authorization: 'Bearer key-limited' }, body: INFER_BODY });
  await res.body.dump();
  const ms = Number(res.headers['x-modelguard-retry-after-ms']);
  assert.ok(ms > 0 && ms <= 500, `next token in ${ms}ms at 2/s`);
});

test('OpenAI-compatible: model from the body, renamed for the backend; usage comes back', async () => {
  const r = await send(p, '/v1/chat/completions', { key: keyFor('a'), body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }) });
  assert.equal(r.status, 200, r.body);
  const doc = JSON.parse(r.body) as { usage: { completion_tokens: number }; model: string };
  assert.equal(doc.usage.completion_tokens, 4);
  // The demo server knows only `demo`: a 200 shows the backend saw its own name; the answer names the client's.
  assert.equal(doc.model, 'chat', 'the answer names the model the client asked for');
});

test('OpenAI streaming passes through as it is generated, not buffered', async () => {
  const t0 = performance.now();
  const res = await request(`${gw.httpUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyFor('a')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 12, stream: true }),
  });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /text\/event-stream/);
  const arrivals: number[] = [];
  let text = '';
  for await (const chunk of res.body) {
    arrivals.push(performance.now() - t0);
    text += (chunk as Buffer).toString();
  }
  assert.ok(text.includes('data: [DONE]'));
  assert.ok(arrivals.length >= 6, `chunks arrived separately: ${arrivals.length}`);
  const first = arrivals[0]!;
  const last = arrivals[arrivals.length - 1]!;
  // 12 tokens 15ms apart: the first arrives long before the last.
  assert.ok(last - first >= 100, `first chunk at ${first.toFixed(0)}ms, last at ${last.toFixed(0)}ms`);
});

test('pass-through: /models/{name}/... reaches the model\'s backend with the rest of the path', async () => {
  const r = await send(p, '/models/demo/v2/health/ready', { key: keyFor('a'), headers: { 'x-request-id': 'pt-1' } });
  assert.equal(r.status, 200);
  assert.ok(acc.requests().some((q) => q.requestId === 'pt-1' && q.url === '/v2/health/ready'));
  assert.equal((await send(p, '/models/demo/v2/health/ready')).status, 401, 'still authenticated');
});

test('metrics: queue wait, dispatched and rejections by group and reason are exported', async () => {
  // Its own traffic, so that it does not depend on the tests before it.
  assert.equal((await send(p, INFER, { key: keyFor('a'), body: INFER_BODY })).status, 200);
  for (let i = 0; i < 3; i++) await send(p, INFER, { key: 'key-limited', body: INFER_BODY });
  const res = await request(`${gw.adminUrl}/metrics`);
  const text = await res.body.text();
  assert.match(text, /broker_received_request_total\{group="a"\} \d+/);
  assert.match(text, /broker_processing_duration_seconds_bucket\{group="a",le="0.001"\} \d+/);
  assert.match(text, /modelguard_dispatched_total\{group="a"\} [1-9]/);
  assert.match(text, /modelguard_rejections_total\{group="b",reason="MG_RATE_LIMITED"\} [1-9]/);
  assert.match(text, /modelguard_queue_depth\{group="a"\} 0/);
  // Groups a, b and default share priority 0 with weight 1 each.
  assert.match(text, /modelguard_group_configured_share\{group="a"\} 0\.333/);
  assert.match(text, /modelguard_group_accelerator_seconds_total\{group="a"\} 0\.\d*[1-9]/);
  assert.match(text, /modelguard_endpoint_healthy\{backend="accel",endpoint="http:\/\/127.0.0.1:\d+"\} 1/);
  for (const path of ['/healthz', '/readyz', '/api/v1/status']) {
    const r = await request(`${gw.adminUrl}${path}`);
    assert.equal(r.statusCode, 200, path);
    await r.body.dump();
  }
});
