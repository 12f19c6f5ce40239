// A hostile gRPC corpus, built from the threat model in docs/security.md: hand-built HTTP/2 frames
// (node:http2) and a real grpc-js client. Each case gets its exact documented answer (gRPC status
// and x-modelguard-error), none of the refused ones reaches the model server, every status message
// fits a header block, and afterwards the process is alive, its heap bounded, and normal calls on
// every protocol still succeed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { OutgoingHttpHeaders } from 'node:http2';
import { ECHO_PATH } from '../../src/demo/grpc.ts';
import { MAX_GRPC_MESSAGE_BYTES } from '../../src/core/grpc-status.ts';
import { wire } from '../../src/grpc/wire.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { call, failure, fp32Request, grpcSetup, inferenceClient, md, rawCall, trailer, type GrpcSetup } from '../grpc/helpers.ts';
import { keyFor, pool, send, INFER_BODY } from '../helpers/harness.ts';
import { frame, RawGrpc, type WireAnswer } from './h2-grpc.ts';
import { modelCallPaths, modelCalls } from './reach.ts';

const API = 'modelguard.io/v1alpha1';
const KEY = keyFor('g');
const OPS_KEY = 'key-ops';
const OWNER_KEY = 'key-owner';
const SVC = '/inference.GRPCInferenceService';
/** An expired deadline: ModelGuard answers first (MG_QUEUE_TIMEOUT), or grpc-js's own deadline timer does (no code). */
const EXPIRED = ['MG_QUEUE_TIMEOUT', null] as const;

/** A protobuf string (or bytes) field. */
function pbString(field: number, value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([varint(field * 8 + 2), varint(bytes.length), bytes]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

const inferMsg = (model: string, data = [1, 2, 3, 4]): Buffer => wire.ModelInferRequest.encode(fp32Request(model, data));
const bearer = (key: string): OutgoingHttpHeaders => ({ authorization: `Bearer ${key}` });

interface Case {
  readonly what: string;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  /** The HTTP/2 DATA bytes (framed). */
  readonly body: Buffer;
  /**
   * Expected grpc-status (-1: the HTTP/2 layer resets the stream, no status), and
   * x-modelguard-error (null: none, the transport's own answer; a list: any of them).
   */
  readonly grpc: number;
  readonly mg: string | null | readonly (string | null)[];
  /** A valid call that is served (it reaches the model server once). */
  readonly served?: boolean;
}

const ADMIN_METHODS = [
  'RepositoryIndex', 'RepositoryModelLoad', 'RepositoryModelUnload', 'SystemSharedMemoryStatus', 'SystemSharedMemoryRegister',
  'SystemSharedMemoryUnregister', 'CudaSharedMemoryStatus', 'CudaSharedMemoryRegister', 'CudaSharedMemoryUnregister',
  'TraceSetting', 'Trace', 'LogSettings', 'ModelStatistics',
];

function corpus(): Case[] {
  const c: Case[] = [];
  const add = (what: string, path: string, headers: OutgoingHttpHeaders, body: Buffer, grpc: number, mg: Case['mg'], served = false): void => {
    c.push({ what, path, headers, body, grpc, mg, served });
  };
  const INFER = `${SVC}/ModelInfer`;
  const ok = frame(inferMsg('demo'));
  // Identity (DESIGN.md: no or bad credentials → UNAUTHENTICATED).
  add('no credentials', INFER, {}, ok, 16, 'MG_UNAUTHENTICATED');
  add('unknown key', INFER, bearer('nope'), ok, 16, 'MG_UNAUTHENTICATED');
  add('empty bearer', INFER, { authorization: 'Bearer ' }, ok, 16, 'MG_UNAUTHENTICATED');
  add('Basic scheme', INFER, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, ok, 16, 'MG_UNAUTHENTICATED');
  add('two bearers joined', INFER, { authorization: `Bearer ${KEY}, Bearer nope` }, ok, 3, 'MG_BAD_REQUEST');
  add('x-api-key given twice', INFER, { 'x-api-key': [KEY, KEY] }, ok, 3, 'MG_BAD_REQUEST');
  add('authorization and x-api-key disagree', INFER, { ...bearer(KEY), 'x-api-key': OWNER_KEY }, ok, 16, 'MG_UNAUTHENTICATED');
  add('unknown x-api-key', INFER, { 'x-api-key': 'mg_unknown' }, ok, 16, 'MG_UNAUTHENTICATED');
  add('JWT-shaped bearer without JWT configured', INFER, bearer('eyJhbGciOiJub25lIn0.eyJzdWIiOiJhcHAtZyJ9.'), ok, 16, 'MG_UNAUTHENTICATED');
  add('key with a NUL-free control char', INFER, bearer(`${KEY}\u0001`), ok, 16, 'MG_UNAUTHENTICATED');
  add('very long key (8 KiB)', INFER, bearer('k'.repeat(8192)), ok, 16, 'MG_UNAUTHENTICATED');
  add('x-service-group given twice', INFER, { ...bearer(KEY), 'x-service-group': ['g', 'g'] }, ok, 3, 'MG_BAD_REQUEST');
  // Models (unknown 404, private 403), with names an attacker would try.
  for (const name of ['nosuch', 'DEMO', 'demo ', ' demo', '../demo', 'demo/../secret', 'secret\u0000', 'démo', '%64emo', '', 'x'.repeat(100_000)]) {
    add(`ModelInfer of ${JSON.stringify(name.slice(0, 20))}${name.length > 20 ? `… (${name.length})` : ''}`, INFER, bearer(KEY), frame(inferMsg(name)), name === '' ? 5 : 5, 'MG_MODEL_NOT_FOUND');
  }
  add('ModelInfer of a private model not granted', INFER, bearer(KEY), frame(inferMsg('secret')), 7, 'MG_FORBIDDEN');
  add('ModelMetadata of a private model not granted', `${SVC}/ModelMetadata`, bearer(KEY), frame(pbString(1, 'secret')), 7, 'MG_FORBIDDEN');
  add('ModelReady of a private model not granted', `${SVC}/ModelReady`, bearer(KEY), frame(pbString(1, 'secret')), 7, 'MG_FORBIDDEN');
  add('ModelMetadata of a 100 KB name', `${SVC}/ModelMetadata`, bearer(KEY), frame(pbString(1, 'm'.repeat(100_000))), 5, 'MG_MODEL_NOT_FOUND');
  // Admin methods through pass-through need `admin` (as /v2/repository, /v2/trace, … over HTTP).
  for (const m of ADMIN_METHODS) {
    add(`${m} by an app without admin`, `${SVC}/${m}`, { ...bearer(KEY), 'x-modelguard-model': 'demo-g' }, frame(pbString(2, 'demo')), 7, 'MG_FORBIDDEN');
  }
  for (const p of [`${SVC}/repositorymodelload`, `${SVC}/REPOSITORYMODELUNLOAD`, '/inference.Other/RepositoryModelLoad', '/triton.Admin/load_model', '/x.Y/UnloadAll', '/x.Y/SetTrace', '/x.Y/SystemSharedMemoryRegister', '/x.Y/UpdateLogSettings']) {
    add(`admin-like method ${p}`, p, { ...bearer(KEY), 'x-modelguard-model': 'demo-g' }, frame(Buffer.alloc(0)), 7, 'MG_FORBIDDEN');
  }
  add('RepositoryModelLoad by an admin app naming another model', `${SVC}/RepositoryModelLoad`, { authorization: `Bearer ${OPS_KEY}`, 'x-modelguard-model': 'demo-g' }, frame(pbString(2, 'secret')), 7, 'MG_FORBIDDEN');
  // Models named inside pass-through messages: each must be the authorized model's backend model.
  const STREAM = `${SVC}/ModelStreamInfer`;
  const tgt = (model: string): OutgoingHttpHeaders => ({ ...bearer(KEY), 'x-modelguard-model': model });
  add('ModelStreamInfer naming a private model behind a public target', STREAM, tgt('demo-g'), frame(inferMsg('secret')), 7, 'MG_FORBIDDEN');
  add('ModelStreamInfer naming the public model, then the private one (last wins)', STREAM, tgt('demo-g'), frame(Buffer.concat([pbString(1, 'demo'), pbString(1, 'secret')])), 7, 'MG_FORBIDDEN');
  add('ModelStreamInfer naming no model', STREAM, tgt('demo-g'), frame(Buffer.alloc(0)), 3, 'MG_BAD_REQUEST');
  add('ModelStreamInfer naming a model unknown to ModelGuard', STREAM, tgt('demo-g'), frame(inferMsg('other')), 7, 'MG_FORBIDDEN');
  add('ModelConfig naming a private model', `${SVC}/ModelConfig`, tgt('demo-g'), frame(pbString(1, 'secret')), 7, 'MG_FORBIDDEN');
  add('ModelStreamInfer with a truncated length', STREAM, tgt('demo-g'), frame(Buffer.from([0x0a, 0xff, 0x01, 0x61])), 3, 'MG_BAD_REQUEST');
  add('ModelStreamInfer with a group (wire type 3)', STREAM, tgt('demo-g'), frame(Buffer.from([0x0b, 0x0c])), 3, 'MG_BAD_REQUEST');
  add('ModelStreamInfer with an 11-byte varint', STREAM, tgt('demo-g'), frame(Buffer.from([0x08, ...Array(10).fill(0xff), 0x01])), 3, 'MG_BAD_REQUEST');
  add('ModelStreamInfer with field number 0', STREAM, tgt('demo-g'), frame(Buffer.from([0x02, 0x00])), 3, 'MG_BAD_REQUEST');
  add('ModelStreamInfer with invalid UTF-8 in model_name', STREAM, tgt('demo-g'), frame(pbString(1, Buffer.from([0xc3, 0x28]))), 3, 'MG_BAD_REQUEST');
  // Pass-through is unary: a second message in the stream is refused by grpc-js before anything is
  // dispatched, so every message ever forwarded is one that was checked.
  add('ModelStreamInfer: the public model, then a second message naming a private one', STREAM, tgt('demo-g'), Buffer.concat([frame(inferMsg('demo')), frame(inferMsg('secret'))]), 12, null);
  add('ModelStreamInfer: 100 messages in one stream', STREAM, tgt('demo-g'), Buffer.concat(Array.from({ length: 100 }, () => frame(inferMsg('demo')))), 12, null);
  add('pass-through Echo: two messages in one stream', ECHO_PATH, tgt('demo-g'), Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))]), 12, null);
  add('pass-through to a private target', ECHO_PATH, tgt('secret'), frame(Buffer.from('x')), 7, 'MG_FORBIDDEN');
  add('pass-through to an unknown target', ECHO_PATH, tgt('nosuch'), frame(Buffer.from('x')), 5, 'MG_MODEL_NOT_FOUND');
  add('pass-through with no target', ECHO_PATH, bearer(KEY), frame(Buffer.from('x')), 12, 'MG_BAD_REQUEST');
  add('pass-through to a model on an HTTP backend', ECHO_PATH, tgt('demo'), frame(Buffer.from('x')), 12, 'MG_BAD_REQUEST');
  // HTTP/2 joins a repeated value with ", ": no model has that name.
  add('pass-through with the target given twice', ECHO_PATH, { ...bearer(KEY), 'x-modelguard-model': ['demo-g', 'secret'] }, frame(Buffer.from('x')), 5, 'MG_MODEL_NOT_FOUND');
  add('pass-through without credentials', ECHO_PATH, { 'x-modelguard-model': 'demo-g' }, frame(Buffer.from('x')), 16, 'MG_UNAUTHENTICATED');
  add('pass-through with a 10 KB unknown target', ECHO_PATH, tgt('t'.repeat(10_000)), frame(Buffer.from('x')), 5, 'MG_MODEL_NOT_FOUND');
  add('unknown method, no target, 4 KB path', `/a.B/${'m'.repeat(4000)}`, bearer(KEY), frame(Buffer.alloc(0)), 12, 'MG_BAD_REQUEST');
  // Deadlines: expired on arrival → DEADLINE_EXCEEDED, never dispatched (no rounding up to 1 ms).
  for (const t of ['0n', '1n', '0u', '1u', '0m', '0S', '0M', '0H']) {
    add(`grpc-timeout ${t}`, INFER, { ...bearer(KEY), 'grpc-timeout': t }, ok, 4, EXPIRED);
  }
  add('grpc-timeout 0n on pass-through', ECHO_PATH, { ...tgt('demo-g'), 'grpc-timeout': '0n' }, frame(Buffer.from('x')), 4, EXPIRED);
  add('grpc-timeout 0n on ModelMetadata', `${SVC}/ModelMetadata`, { ...bearer(KEY), 'grpc-timeout': '0n' }, frame(pbString(1, 'demo')), 4, EXPIRED);
  add('grpc-timeout 0n without credentials', INFER, { 'grpc-timeout': '0n' }, ok, 4, EXPIRED);
  add('grpc-timeout not a duration', INFER, { ...bearer(KEY), 'grpc-timeout': 'soon' }, ok, 13, null);
  add('grpc-timeout 1m (less than 1 ms left after the margin)', INFER, { ...bearer(KEY), 'grpc-timeout': '1m' }, ok, 4, EXPIRED);
  add('grpc-timeout 1000u', INFER, { ...bearer(KEY), 'grpc-timeout': '1000u' }, ok, 4, EXPIRED);
  // Metadata over 16 KiB: RESOURCE_EXHAUSTED MG_TOO_LARGE at the edge, never forwarded.
  add('one 20 KB metadata value', INFER, { ...bearer(KEY), 'x-pad': 'p'.repeat(20_000) }, ok, 8, 'MG_TOO_LARGE');
  add('60 KB metadata value', INFER, { ...bearer(KEY), 'x-pad': 'p'.repeat(60_000) }, ok, 8, 'MG_TOO_LARGE');
  add('100 KB metadata value (over the HTTP/2 header list limit: stream reset)', INFER, { ...bearer(KEY), 'x-pad': 'p'.repeat(100_000) }, ok, -1, null);
  add('500 small metadata entries (over 128 header pairs: stream reset)', INFER, { ...bearer(KEY), ...Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`x-m${i}`, 'v'])) }, ok, -1, null);
  add('100 metadata entries of 200 bytes', INFER, { ...bearer(KEY), ...Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-m${i}`, 'v'.repeat(200)])) }, ok, 8, 'MG_TOO_LARGE');
  add('20 KB binary metadata', INFER, { ...bearer(KEY), 'x-blob-bin': Buffer.alloc(15_000, 7).toString('base64') }, ok, 8, 'MG_TOO_LARGE');
  add('20 KB metadata on pass-through', ECHO_PATH, { ...tgt('demo-g'), 'x-pad': 'p'.repeat(20_000) }, frame(Buffer.from('x')), 8, 'MG_TOO_LARGE');
  add('20 KB metadata without credentials', INFER, { 'x-pad': 'p'.repeat(20_000) }, ok, 8, 'MG_TOO_LARGE');
  // Messages ModelGuard decodes: malformed protobuf or tensors → INVALID_ARGUMENT before any backend.
  const bad = (what: string, bytes: Buffer): void => add(what, INFER, bearer(KEY), frame(bytes), 3, 'MG_BAD_REQUEST');
  bad('ModelInfer: garbage bytes', Buffer.from([0x2a, 0xff, 0xff, 0x01, 0x00]));
  bad('ModelInfer: truncated field', inferMsg('demo').subarray(0, 12));
  bad('ModelInfer: shape and contents disagree', wire.ModelInferRequest.encode({ model_name: 'demo', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: [1] } }] }));
  bad('ModelInfer: unknown datatype', wire.ModelInferRequest.encode({ model_name: 'demo', inputs: [{ name: 'input', datatype: 'FP99', shape: [1, 1], contents: { fp32_contents: [1] } }] }));
  bad('ModelInfer: negative dimension', wire.ModelInferRequest.encode({ model_name: 'demo', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] }));
  bad('ModelInfer: raw contents of the wrong size', wire.ModelInferRequest.encode({ model_name: 'demo', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [Buffer.alloc(3)] }));
  bad('ModelInfer: shape of 2^40 elements', wire.ModelInferRequest.encode({ model_name: 'demo', inputs: [{ name: 'input', datatype: 'FP32', shape: [1 << 20, 1 << 20], contents: { fp32_contents: [1] } }] }));
  bad('ModelInfer: raw contents and typed contents both', wire.ModelInferRequest.encode({ model_name: 'demo', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }], raw_input_contents: [Buffer.alloc(16)] }));
  bad('ModelInfer: no inputs', wire.ModelInferRequest.encode({ model_name: 'demo' }));
  bad('ModelMetadata: garbage bytes', Buffer.from([0x0a, 0x7f]));
  // Framing refused by grpc-js before ModelGuard sees a message (its own statuses, no MG code).
  // Odd but valid: served once, as any client would be.
  add('compressed flag with identity encoding (grpc-js reads it uncompressed)', INFER, bearer(KEY), frame(inferMsg('demo'), { compressed: true }), 0, null, true);
  add('x-service-group spoofed with a key (ignored: the App fixes the group)', INFER, { ...bearer(KEY), 'x-service-group': 'gold' }, ok, 0, null, true);
  add('15 KB of metadata (under the limit)', INFER, { ...bearer(KEY), 'x-pad': 'p'.repeat(15_000) }, ok, 0, null, true);
  add('grpc-timeout 10S', INFER, { ...bearer(KEY), 'grpc-timeout': '10S' }, ok, 0, null, true);
  add('x-api-key instead of authorization', INFER, { 'x-api-key': KEY }, ok, 0, null, true);
  add('pass-through Echo to the public gRPC model', ECHO_PATH, tgt('demo-g'), frame(Buffer.from('x')), 0, null, true);
  add('ModelStreamInfer naming the authorized model (the demo server does not stream: UNIMPLEMENTED from it)', STREAM, tgt('demo-g'), frame(inferMsg('demo')), 12, null, true);
  add('message over the transport limit (announced 64 MiB)', INFER, bearer(KEY), frame(Buffer.alloc(16), { length: 64 * 1024 * 1024 }), 8, null);
  add('message over maxBodySize (300 KiB body)', INFER, bearer(KEY), frame(Buffer.alloc(300 * 1024, 0)), 8, null);
  return c;
}

describe('hostile gRPC corpus', () => {
  let s: GrpcSetup;
  let h2: RawGrpc;

  before(async () => {
    s = await grpcSetup({
      demo: { recordLimit: 1_000_000, models: ['demo', 'secret'] },
      def: {
        groups: [{ name: 'g' }],
        gateway: { maxBodySize: '256Ki' },
        extra: [
          { apiVersion: API, kind: 'Model', metadata: { name: 'secret-g2' }, spec: { backend: 'accel-grpc', backendModel: 'secret', visibility: 'private' } },
          { apiVersion: API, kind: 'App', metadata: { name: 'owner' }, spec: { serviceGroup: 'g', apiKeys: [{ sha256: sha256Hex(OWNER_KEY) }], models: ['secret-g2'] } },
          { apiVersion: API, kind: 'App', metadata: { name: 'ops' }, spec: { serviceGroup: 'g', apiKeys: [{ sha256: sha256Hex(OPS_KEY) }], operations: ['infer', 'metadata', 'admin'] } },
        ],
      },
    });
    h2 = new RawGrpc(s.gw.grpcUrl);
  });
  after(async () => {
    h2.close();
    await s.close();
  });

  const cases = corpus();
  /** Calls ModelGuard sent to a model server (the demo server does not record methods it lacks). */
  const dispatched = (): number => s.gw.broker.status().groups.find((g) => g.name === 'g')?.dispatched ?? 0;

  it(`${cases.length} hand-built HTTP/2 calls each get their documented status; none reaches the model server`, { timeout: 120_000 }, async () => {
    const wrong: string[] = [];
    for (const k of cases) {
      const before = modelCalls(s.demo);
      const sent = dispatched();
      const a: WireAnswer = await h2.call(k.path, k.headers, k.body);
      const reached = modelCalls(s.demo) - before;
      const went = dispatched() - sent;
      const problems: string[] = [];
      if (a.grpc !== k.grpc) problems.push(`status ${a.grpc} (want ${k.grpc})`);
      const mgs: readonly (string | null)[] = Array.isArray(k.mg) ? k.mg : [k.mg as string | null];
      if (!mgs.includes(a.mg ?? null)) problems.push(`x-modelguard-error ${a.mg} (want ${mgs.join(' or ')})`);
      if (reached > (k.served ? 1 : 0)) problems.push(`reached the model server ${reached}×: ${modelCallPaths(s.demo).slice(-Math.max(1, reached)).join(', ')}`);
      if (went !== (k.served ? 1 : 0)) problems.push(`dispatched ${went}×`);
      if (a.rawMessage.length > MAX_GRPC_MESSAGE_BYTES) problems.push(`grpc-message of ${a.rawMessage.length} bytes`);
      if (a.rawMessage !== '' && !/^[\x20-\x7e]*$/.test(a.rawMessage)) problems.push('grpc-message not percent-encoded');
      if (problems.length > 0) wrong.push(`${k.what}: ${problems.join('; ')}`);
    }
    assert.deepEqual(wrong, []);
    assert.ok(cases.length >= 100, `${cases.length} cases`);
  });

  it('the same connection still works after every case, and a valid call over raw HTTP/2 succeeds', async () => {
    const before = modelCalls(s.demo);
    const a = await h2.call(`${SVC}/ModelInfer`, bearer(KEY), frame(inferMsg('demo')));
    assert.equal(a.grpc, 0);
    assert.equal(modelCalls(s.demo), before + 1);
  });

  it('grpc-js: a 100 KB model name is answered NOT_FOUND with a bounded message, and the next call on the channel succeeds', async () => {
    const f = await failure(call(s.mg, 'ModelInfer', fp32Request('n'.repeat(100_000), [1, 2, 3, 4]), md({ authorization: `Bearer ${KEY}` })));
    assert.equal(f.code, 5);
    assert.equal(trailer(f.trailers, 'x-modelguard-error'), 'MG_MODEL_NOT_FOUND');
    assert.ok(f.details.length < MAX_GRPC_MESSAGE_BYTES, `${f.details.length} chars`);
    assert.match(f.details, /\(100000 chars\)/);
    const r = await call(s.mg, 'ModelInfer', fp32Request('demo', [1, 2, 3, 4]), md({ authorization: `Bearer ${KEY}` }));
    assert.ok(r.value);
  });

  it('grpc-js: admin methods and smuggled models refused; an admin app may load the model it names; the granted owner may stream its private model', async () => {
    const before = dispatched();
    const load = pbString(2, 'demo');
    const f = await failure(rawCall(s.gw.grpcUrl, `${SVC}/RepositoryModelLoad`, load, md({ authorization: `Bearer ${KEY}`, 'x-modelguard-model': 'demo-g' })));
    assert.equal(f.code, 7);
    assert.equal(dispatched(), before);
    // The admin app is let through: the demo server has no repository API and says so itself.
    const adm = await failure(rawCall(s.gw.grpcUrl, `${SVC}/RepositoryModelLoad`, load, md({ authorization: `Bearer ${OPS_KEY}`, 'x-modelguard-model': 'demo-g' })));
    assert.equal(adm.code, 12, `${adm.details} ${trailer(adm.trailers, 'x-modelguard-error')}`);
    assert.equal(trailer(adm.trailers, 'x-modelguard-error'), undefined, 'the backend\'s answer, not a refusal');
    assert.equal(dispatched(), before + 1);
    const smuggled = await failure(rawCall(s.gw.grpcUrl, `${SVC}/ModelStreamInfer`, inferMsg('secret'), md({ authorization: `Bearer ${KEY}`, 'x-modelguard-model': 'demo-g' })));
    assert.equal(smuggled.code, 7);
    const owned = await failure(rawCall(s.gw.grpcUrl, `${SVC}/ModelStreamInfer`, inferMsg('secret'), md({ authorization: `Bearer ${OWNER_KEY}`, 'x-modelguard-model': 'secret-g2' })));
    assert.notEqual(owned.code, 7, 'the owner is let through (the demo server does not stream)');
    assert.equal(dispatched(), before + 2);
  });

  it('grpc-js deadlines: 1 ms or less is DEADLINE_EXCEEDED and never dispatched', async () => {
    const before = modelCalls(s.demo);
    for (let i = 0; i < 20; i++) {
      const f = await failure(call(s.mg, 'ModelInfer', fp32Request('demo', [1, 2, 3, 4]), md({ authorization: `Bearer ${KEY}` }), { deadline: Date.now() + (i % 2) }));
      assert.equal(f.code, 4);
    }
    assert.equal(modelCalls(s.demo), before);
  });

  it('after the corpus: the heap is bounded over repeated rounds, and HTTP and gRPC still serve (MQTT: mqtt-corpus.test.ts)', { timeout: 180_000 }, async (t) => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const light = cases.filter((k) => k.body.length < 16_384 && JSON.stringify(k.headers).length < 16_384);
    const round = async (): Promise<void> => {
      for (const k of light) await h2.call(k.path, k.headers, k.body);
    };
    await round();
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 5; i++) await round();
    gc();
    const grown = process.memoryUsage().heapUsed - heap0;
    t.diagnostic(`heap growth over the repeated rounds: ${(grown / 1048576).toFixed(2)} MiB; rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
    assert.ok(grown < 16 * 1024 * 1024, `heap grew ${(grown / 1048576).toFixed(1)} MiB over ${5 * light.length} hostile calls`);
    assert.equal(s.gw.broker.status().groups.find((g) => g.name === 'g')?.queued, 0);
    // Every protocol still answers a normal request.
    const client = inferenceClient(s.gw.grpcUrl);
    try {
      const r = await call(client, 'ModelInfer', fp32Request('demo-g', [1, 2, 3, 4]), md({ authorization: `Bearer ${KEY}` }));
      assert.ok(r.value);
    } finally {
      client.close();
    }
    const echo = await rawCall(s.gw.grpcUrl, ECHO_PATH, Buffer.from('hi'), md({ authorization: `Bearer ${KEY}`, 'x-modelguard-model': 'demo-g' }));
    assert.deepEqual(echo.value, Buffer.from('hi'));
    const http = await send(pool(s.gw.httpUrl), '/v2/models/demo/infer', { key: KEY, body: INFER_BODY });
    assert.equal(http.status, 200);
  });
});
