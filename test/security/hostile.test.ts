// A corpus of hostile requests, sent as raw bytes: each gets its DESIGN.md answer (or Node's
// parser refuses it), none reaches the backend, and the process stays up with flat memory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, delay, gateway, keyFor, INFER_BODY } from '../helpers/harness.ts';

const API = 'modelguard.io/v1alpha1';
const sha = (k: string): string => createHash('sha256').update(k).digest('hex');
let acc: ModelServer;
let gw: Gateway;
let port = 0;
const KEY = keyFor('a');

before(async () => {
  acc = await accelerator({ slots: 2, serviceTime: 1, models: ['demo', 'secret'] });
  gw = await gateway({
    endpoints: [{ url: acc.url, slots: 2 }],
    groups: [{ name: 'a' }],
    gateway: { maxBodySize: '4Ki', requestReadTimeout: '400ms' },
    extra: [
      { apiVersion: API, kind: 'Model', metadata: { name: 'secret' }, spec: { backend: 'accel', visibility: 'private' } },
      { apiVersion: API, kind: 'App', metadata: { name: 'owner' }, spec: { serviceGroup: 'a', models: ['secret'], apiKeys: [{ sha256: sha('key-owner') }] } },
    ],
  });
  port = Number(new URL(gw.httpUrl).port);
});
after(async () => {
  await gw.close();
  await acc.close();
});

/** Sends raw bytes (optionally in timed pieces) and returns the status code of the answer (0: connection closed with none). */
function raw(pieces: (string | Buffer)[], gapMs = 0): Promise<number> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    const done = (): void => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve(m ? Number(m[1]) : 0);
    };
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('close', done);
    s.on('error', () => undefined);
    s.setTimeout(5000, () => s.destroy());
    void (async () => {
      for (const p of pieces) {
        if (s.destroyed) return;
        s.write(p);
        if (gapMs) await delay(gapMs);
      }
    })();
  });
}

function req(method: string, path: string, headers: string[], body = ''): string {
  const h = [...headers, 'Host: x', 'Connection: close'];
  if (body && !headers.some((x) => /^(content-length|transfer-encoding):/i.test(x))) h.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${method} ${path} HTTP/1.1\r\n${h.join('\r\n')}\r\n\r\n${body}`;
}

const auth = `Authorization: Bearer ${KEY}`;
const tensor = (over: Record<string, unknown>): string => JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4], ...over }] });
const deep = (n: number): string => `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":${'['.repeat(n)}1${']'.repeat(n)}}]}`;

interface Case {
  what: string;
  bytes: (id: string) => (string | Buffer)[];
  expect: number[];
  gapMs?: number;
}

const I = (id: string): string => `X-Request-Id: ${id}`;
const post = (path: string, headers: string[], body = INFER_BODY) => (id: string): string[] => [req('POST', path, [...headers, I(id)], body)];

const CORPUS: Case[] = [
  // Path tricks
  { what: 'encoded dot-dot model', bytes: post('/v2/models/%2e%2e/infer', [auth]), expect: [400] },
  { what: 'upper-case encoded dot-dot', bytes: post('/v2/models/%2E%2E/infer', [auth]), expect: [400] },
  { what: 'encoded slash traversal', bytes: post('/v2/models/..%2f..%2fsecret/infer', [auth]), expect: [400] },
  { what: 'encoded slash in name', bytes: post('/v2/models/secret%2F/infer', [auth]), expect: [400] },
  { what: 'NUL in model name', bytes: post('/v2/models/secret%00/infer', [auth]), expect: [400] },
  { what: 'bad percent-encoding', bytes: post('/v2/models/%zz/infer', [auth]), expect: [400] },
  { what: 'overlong UTF-8 dots', bytes: post('/v2/models/%C0%AE%C0%AE/infer', [auth]), expect: [400] },
  { what: 'private model, not granted', bytes: post('/v2/models/secret/infer', [auth]), expect: [403] },
  { what: 'private model, versioned path', bytes: post('/v2/models/secret/versions/1/infer', [auth]), expect: [403] },
  { what: 'private model, case variant', bytes: post('/v2/models/SECRET/infer', [auth]), expect: [404] },
  { what: 'private model via pass-through', bytes: post('/models/secret/v2/models/secret/infer', [auth]), expect: [403] },
  { what: 'pass-through traversal', bytes: post('/models/demo/..%2f..%2fadmin', [auth]), expect: [400] },
  { what: 'pass-through dot-dot model', bytes: post('/models/%2e%2e/v2/health/ready', [auth]), expect: [400] },
  { what: 'pass-through repository', bytes: post('/models/demo/v2/repository/index', [auth], '{}'), expect: [403] },
  { what: 'pass-through repository, odd case', bytes: post('/models/demo/v2/REPOSITORY/models/demo/unload', [auth], '{}'), expect: [403] },
  { what: 'double slash', bytes: post('//v2/models/secret/infer', [auth]), expect: [404] },
  { what: 'empty segment', bytes: post('/v2//models/secret/infer', [auth]), expect: [404] },
  { what: 'query cannot rename the model', bytes: post('/v2/models/secret/infer?model=demo', [auth]), expect: [403] },
  { what: 'semicolon path parameter', bytes: post('/v2/models/demo;secret/infer', [auth]), expect: [404] },
  { what: 'absolute-form URL', bytes: post('http://evil/v2/models/secret/infer', [auth]), expect: [404] },
  { what: 'fragment in path', bytes: post('/v2/models/secret/infer#x', [auth]), expect: [404, 400] },
  { what: 'wrong method', bytes: post('/v2/models/demo/ready', [auth]), expect: [405] },
  { what: 'unknown method', bytes: (id) => [req('FOO', '/v2/models/demo/infer', [auth, I(id)], INFER_BODY)], expect: [400, 405] },
  { what: 'space in path', bytes: (id) => [`POST /v2/models/de mo/infer HTTP/1.1\r\nHost: x\r\n${auth}\r\n${I(id)}\r\nContent-Length: 2\r\n\r\n{}`], expect: [400] },
  // Identity headers
  { what: 'no credentials', bytes: post('/v2/models/demo/infer', []), expect: [401] },
  { what: 'duplicate Authorization (other app second)', bytes: post('/v2/models/secret/infer', [auth, 'Authorization: Bearer key-owner']), expect: [400] },
  { what: 'duplicate Authorization (owner first)', bytes: post('/v2/models/secret/infer', ['Authorization: Bearer key-owner', auth]), expect: [400] },
  { what: 'duplicate X-API-Key, mixed case', bytes: post('/v2/models/secret/infer', [`X-Api-Key: ${KEY}`, 'x-api-key: key-owner']), expect: [400] },
  { what: 'Authorization and X-API-Key disagree', bytes: post('/v2/models/secret/infer', [auth, 'X-API-Key: key-owner']), expect: [401] },
  { what: 'two tokens in one Bearer', bytes: post('/v2/models/secret/infer', [`Authorization: Bearer ${KEY} key-owner`]), expect: [401] },
  { what: 'comma-joined tokens', bytes: post('/v2/models/secret/infer', [`Authorization: Bearer key-owner,${KEY}`]), expect: [401] },
  { what: 'Basic scheme', bytes: post('/v2/models/demo/infer', ['Authorization: Basic a2V5LW93bmVyOg==']), expect: [401] },
  { what: 'empty Bearer', bytes: post('/v2/models/demo/infer', ['Authorization: Bearer']), expect: [401] },
  { what: 'whitespace X-API-Key', bytes: post('/v2/models/demo/infer', ['X-API-Key:    ']), expect: [401] },
  { what: 'group header without a key', bytes: post('/v2/models/demo/infer', ['X-Service-Group: a']), expect: [401] },
  { what: 'obs-fold continuation', bytes: post('/v2/models/demo/infer', ['X-API-Key: key-', ' owner']), expect: [400] },
  { what: 'oversized header', bytes: post('/v2/models/demo/infer', [auth, `X-Pad: ${'a'.repeat(20_000)}`]), expect: [431] },
  { what: 'header name with a space', bytes: post('/v2/models/demo/infer', [auth, 'X Bad: 1']), expect: [400] },
  { what: 'bad X-Request-Timeout', bytes: post('/v2/models/demo/infer', [auth, 'X-Request-Timeout: 0ms']), expect: [400] },
  { what: 'negative X-Request-Timeout', bytes: post('/v2/models/demo/infer', [auth, 'X-Request-Timeout: -5s']), expect: [400] },
  { what: 'bad binary header length', bytes: post('/v2/models/demo/infer', [auth, 'Inference-Header-Content-Length: 9999']), expect: [400] },
  // Framing and smuggling (Node's parser answers 400 for bytes after `Connection: close`)
  { what: 'Content-Length and Transfer-Encoding', bytes: (id) => [req('POST', '/v2/models/demo/infer', [auth, I(id), 'Content-Length: 4', 'Transfer-Encoding: chunked'], '0\r\n\r\n')], expect: [400] },
  { what: 'two different Content-Lengths', bytes: (id) => [req('POST', '/v2/models/demo/infer', [auth, I(id), 'Content-Length: 2', 'Content-Length: 3'], '{}x')], expect: [400] },
  { what: 'negative Content-Length', bytes: (id) => [req('POST', '/v2/models/demo/infer', [auth, I(id), 'Content-Length: -1'], '')], expect: [400] },
  { what: 'bad chunk size', bytes: (id) => [req('POST', '/v2/models/demo/infer', [auth, I(id), 'Transfer-Encoding: chunked'], 'zz\r\n{}\r\n0\r\n\r\n')], expect: [400] },
  { what: 'smuggled second request', bytes: (id) => [req('POST', '/v2/models/secret/infer', [auth, I(id), 'Transfer-Encoding: chunked'], `0\r\n\r\nPOST /v2/models/secret/infer HTTP/1.1\r\nHost: x\r\n${I(`${id}-2`)}\r\n\r\n`)], expect: [403, 400] },
  // Bodies and tensors
  { what: 'body over limit (declared)', bytes: post('/v2/models/demo/infer', [auth], tensor({ pad: 'x'.repeat(5000) })), expect: [413] },
  { what: 'body over limit (chunked)', bytes: (id) => [req('POST', '/v2/models/demo/infer', [auth, I(id), 'Transfer-Encoding: chunked'], `${(6000).toString(16)}\r\n${'x'.repeat(6000)}\r\n0\r\n\r\n`)], expect: [413] },
  { what: 'malformed JSON', bytes: post('/v2/models/demo/infer', [auth], '{"inputs": [}'), expect: [400] },
  { what: 'empty body', bytes: post('/v2/models/demo/infer', [auth], ''), expect: [400] },
  { what: 'JSON array body', bytes: post('/v2/models/demo/infer', [auth], '[]'), expect: [400] },
  { what: 'shape and data disagree', bytes: post('/v2/models/demo/infer', [auth], tensor({ shape: [2, 4] })), expect: [400] },
  { what: 'unknown datatype', bytes: post('/v2/models/demo/infer', [auth], tensor({ datatype: 'FP128' })), expect: [400] },
  { what: 'strings in FP32', bytes: post('/v2/models/demo/infer', [auth], tensor({ data: ['NaN', 'Infinity', 1, 2] })), expect: [400] },
  { what: 'shape overflow', bytes: post('/v2/models/demo/infer', [auth], tensor({ shape: [2 ** 20, 2 ** 20, 4] })), expect: [400] },
  { what: 'deeply nested data', bytes: post('/v2/models/demo/infer', [auth], deep(1500)), expect: [400] },
  { what: 'proto pollution keys', bytes: post('/v2/models/demo/infer', [auth], '{"__proto__":{"inputs":[1]},"constructor":{"prototype":{}}}'), expect: [400] },
  { what: 'OpenAI model as array', bytes: post('/v1/chat/completions', [auth], '{"model":["demo"],"messages":[]}'), expect: [400] },
  { what: 'OpenAI private model', bytes: post('/v1/chat/completions', [auth], '{"model":"secret","messages":[]}'), expect: [403] },
  { what: 'OpenAI traversal model', bytes: post('/v1/chat/completions', [auth], '{"model":"../secret","messages":[]}'), expect: [404] },
  { what: 'OpenAI prototype model name', bytes: post('/v1/chat/completions', [auth], '{"model":"__proto__","messages":[]}'), expect: [404] },
  // Slow clients: answered 408 (or dropped) after requestReadTimeout, never holding a slot.
  { what: 'slow headers (slowloris)', bytes: (id) => ['POST /v2/models/demo/infer HTTP/1.1\r\n', `Host: x\r\n${I(id)}\r\n`, 'X-A: 1\r\n', 'X-B: 1\r\n', 'X-C: 1\r\n', 'X-D: 1\r\n'], expect: [408, 0], gapMs: 150 },
  { what: 'stalled body', bytes: (id) => [`POST /v2/models/demo/infer HTTP/1.1\r\nHost: x\r\n${auth}\r\n${I(id)}\r\nContent-Length: 500\r\n\r\n{"inputs":`], expect: [408, 0] },
];

test(`a corpus of ${CORPUS.length} hostile requests gets the right answers; none reaches the backend`, { timeout: 60_000 }, async () => {
  assert.ok(CORPUS.length >= 50);
  const wrong: string[] = [];
  for (const [i, c] of CORPUS.entries()) {
    const status = await raw(c.bytes(`hostile-${i}`), c.gapMs ?? 0);
    if (!c.expect.includes(status)) wrong.push(`#${i} ${c.what}: got ${status}, want ${c.expect.join(' or ')}`);
  }
  assert.deepEqual(wrong, []);
  const reached = [...acc.receivedIds()].filter((id) => id.startsWith('hostile-'));
  assert.deepEqual(reached, [], 'no hostile request reached the backend');
  // Still serving.
  const ok = await raw([req('POST', '/v2/models/demo/infer', [auth], INFER_BODY)]);
  assert.equal(ok, 200);
});

test('the process stays up with flat memory under repeated hostile traffic', { timeout: 120_000 }, async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const fast = CORPUS.filter((c) => !c.gapMs && !c.what.startsWith('stalled'));
  const round = async (): Promise<void> => {
    for (const c of fast) await raw(c.bytes('mem'));
  };
  await round();
  await round();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 8; i++) await round();
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 8 * 1024 * 1024, `heap grew ${(grown / 1024 / 1024).toFixed(1)} MiB over ${8 * fast.length} hostile requests`);
  assert.equal(gw.broker.status().groups.find((g) => g.name === 'a')?.queued, 0);
  assert.equal(gw.pipeline.inflight('app-a'), 0);
});
