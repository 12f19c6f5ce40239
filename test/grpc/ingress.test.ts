/**
 * gRPC ingress end to end: a standard grpc-js client of inference.GRPCInferenceService talks to
 * ModelGuard, which forwards to the demo server over gRPC (`demo-g`) and over HTTP (`demo`). Every
 * answer is compared with the same call made directly to the demo server's gRPC listener.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { INFER_BODY, send } from '../helpers/harness.ts';
import { auth, call, failure, fp32Request, grpcSetup, KEY, md, rawCall, trailer, type GrpcSetup } from './helpers.ts';
import { methodPath } from '../../src/grpc/wire.ts';

const OK_MODELS = ['demo', 'demo-g'] as const;

/** Inference calls the demo server received (health probes reach it too, so not stats().requests). */
function inferCalls(demo: GrpcSetup['demo']): number {
  return demo.requests().filter((r) => r.url.endsWith('/infer') || r.url.endsWith('/ModelInfer')).length;
}

function f32(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
}

function bytesTensor(values: string[]): Buffer {
  return Buffer.concat(values.flatMap((v) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(Buffer.byteLength(v), 0);
    return [len, Buffer.from(v)];
  }));
}

describe('gRPC ingress: inference.GRPCInferenceService', () => {
  let s: GrpcSetup;
  let http: Pool;
  before(async () => {
    s = await grpcSetup();
    http = new Pool(s.gw.httpUrl, { connections: 4 });
  });
  after(async () => {
    await http.close();
    await s.close();
  });

  it('ServerLive, ServerReady and ServerMetadata answer for ModelGuard itself', async () => {
    assert.deepEqual((await call(s.mg, 'ServerLive', {})).value, { live: true });
    assert.deepEqual((await call(s.mg, 'ServerReady', {})).value, { ready: true });
    const meta = await call<{ name: string; version: string }>(s.mg, 'ServerMetadata', {});
    assert.equal(meta.value.name, 'modelguard');
    assert.match(meta.value.version, /^\d+\.\d+\.\d+$/);
  });

  for (const model of OK_MODELS) {
    const via = model === 'demo' ? 'an HTTP backend' : 'a gRPC backend';
    it(`ModelMetadata and ModelReady through ModelGuard to ${via} equal the direct answers`, async () => {
      const direct = await call(s.direct, 'ModelMetadata', { name: 'demo' });
      const viaMg = await call(s.mg, 'ModelMetadata', { name: model }, auth(KEY));
      // The same metadata, named as the client asked (demo-g is an alias of the backend's `demo`).
      assert.deepEqual(viaMg.value, { ...direct.value, name: model });
      assert.equal((direct.value as { platform: string }).platform, 'modelguard_simulated');
      assert.deepEqual((await call(s.mg, 'ModelReady', { name: model }, auth(KEY))).value, { ready: true });
    });

    it(`ModelInfer with typed contents through ModelGuard to ${via} equals the direct answer`, async () => {
      const direct = await call(s.direct, 'ModelInfer', fp32Request('demo', [1, 2, 3, 4, 5, 6, 7, 8], [2, 4]));
      const viaMg = await call(s.mg, 'ModelInfer', fp32Request(model, [1, 2, 3, 4, 5, 6, 7, 8], [2, 4]), auth(KEY));
      assert.deepEqual({ ...viaMg.value }, { ...direct.value, model_name: model });
      const out = (viaMg.value as { outputs: { contents: { fp32_contents: number[] } }[] }).outputs[0];
      assert.deepEqual(out?.contents.fp32_contents, [10, 2.5, 1, 4, 26, 6.5, 5, 8]);
      assert.equal(trailer(viaMg.initial, 'x-modelguard-served-by'), 'edge');
    });

    it(`ModelInfer with raw contents (FP32, BYTES) to ${via} answers raw, equal to the direct answer`, async () => {
      for (const req of [
        { id: 'raw-1', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32([0.5, 1.5, 4])] },
        { id: 'raw-2', inputs: [{ name: 'input', datatype: 'BYTES', shape: [1, 2] }, { name: 'n', datatype: 'INT64', shape: [1], contents: undefined }], raw_input_contents: [bytesTensor(['hi', 'abc']), Buffer.from([7, 0, 0, 0, 0, 0, 0, 0])] },
      ]) {
        const direct = await call<{ raw_output_contents: Buffer[] }>(s.direct, 'ModelInfer', { model_name: 'demo', ...req });
        const viaMg = await call<{ raw_output_contents: Buffer[] }>(s.mg, 'ModelInfer', { model_name: model, ...req }, auth(KEY));
        assert.deepEqual(viaMg.value, { ...direct.value, model_name: model });
        assert.equal(viaMg.value.raw_output_contents.length, 1);
      }
      const bytes = await call<{ raw_output_contents: Buffer[] }>(s.mg, 'ModelInfer', { model_name: model, inputs: [{ name: 'input', datatype: 'BYTES', shape: [1, 2] }], raw_input_contents: [bytesTensor(['hi', 'abc'])] }, auth(KEY));
      const raw = bytes.value.raw_output_contents[0] as Buffer;
      // The simulated model sums string lengths: 2 + 3, mean 2.5, min 2, max 3.
      assert.deepEqual([0, 1, 2, 3].map((i) => raw.readFloatLE(i * 4)), [5, 2.5, 2, 3]);
    });

    it(`ModelInfer with typed INT64 and BOOL contents reaches ${via} intact`, async () => {
      const req = { id: 'typed-1', inputs: [{ name: 'input', datatype: 'INT64', shape: [1, 3], contents: { int64_contents: [3, -1, 9] } }, { name: 'b', datatype: 'BOOL', shape: [2], contents: { bool_contents: [true, false] } }] };
      const direct = await call(s.direct, 'ModelInfer', { model_name: 'demo', ...req });
      const viaMg = await call<{ outputs: { contents: { fp32_contents: number[] } }[] }>(s.mg, 'ModelInfer', { model_name: model, ...req }, auth(KEY));
      assert.deepEqual(viaMg.value, { ...direct.value, model_name: model });
      assert.deepEqual(viaMg.value.outputs[0]?.contents.fp32_contents, [11, 11 / 3, -1, 9].map((v) => Math.fround(v)));
    });
  }

  it('an HTTP client reaches a gRPC backend: the JSON answer equals the HTTP backend\'s', async () => {
    const viaGrpc = await send(http, '/v2/models/demo-g/infer', { key: KEY, body: INFER_BODY });
    const viaHttp = await send(http, '/v2/models/demo/infer', { key: KEY, body: INFER_BODY });
    assert.equal(viaGrpc.status, 200, viaGrpc.body);
    const a = JSON.parse(viaGrpc.body) as { outputs: unknown[]; id?: string };
    const b = JSON.parse(viaHttp.body) as { outputs: unknown[]; id?: string };
    assert.deepEqual(a.outputs, b.outputs);
    const meta = await send(http, '/v2/models/demo-g', { key: KEY });
    assert.equal(meta.status, 200);
    assert.deepEqual(JSON.parse(meta.body), { ...(JSON.parse((await send(http, '/v2/models/demo', { key: KEY })).body) as object), name: 'demo-g' });
    const ready = await send(http, '/v2/models/demo-g/ready', { key: KEY });
    assert.deepEqual(JSON.parse(ready.body), { name: 'demo-g', ready: true });
  });

  it('an HTTP client with a bad tensor for a gRPC backend gets 400 and the backend sees nothing', async () => {
    const before = inferCalls(s.demo);
    const bad = await send(http, '/v2/models/demo-g/infer', { key: KEY, body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2] }] }) });
    assert.equal(bad.status, 400);
    assert.equal(bad.code, 'MG_BAD_REQUEST');
    assert.equal(inferCalls(s.demo), before);
  });

  it('no key, a bad key and an ungranted private model are refused with the trailer; the backend sees none', async () => {
    const before = inferCalls(s.demo);
    const none = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [1, 2])));
    assert.equal(none.code, 16);
    assert.equal(trailer(none.trailers, 'x-modelguard-error'), 'MG_UNAUTHENTICATED');
    const bad = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [1, 2]), md({ 'x-api-key': 'wrong' })));
    assert.equal(bad.code, 16);
    assert.equal(trailer(bad.trailers, 'x-modelguard-error'), 'MG_UNAUTHENTICATED');
    const secret = await failure(call(s.mg, 'ModelInfer', fp32Request('secret', [1, 2]), auth(KEY)));
    assert.equal(secret.code, 7);
    assert.equal(trailer(secret.trailers, 'x-modelguard-error'), 'MG_FORBIDDEN');
    const secretMeta = await failure(call(s.mg, 'ModelMetadata', { name: 'secret' }, auth(KEY)));
    assert.equal(secretMeta.code, 7);
    const unknown = await failure(call(s.mg, 'ModelInfer', fp32Request('nope', [1, 2]), auth(KEY)));
    assert.equal(unknown.code, 5);
    assert.equal(trailer(unknown.trailers, 'x-modelguard-error'), 'MG_MODEL_NOT_FOUND');
    // (grpc-js itself refuses to send two authorization values; x-api-key it sends.)
    const twice = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [1, 2]), md({ 'x-api-key': [KEY, 'other'] })));
    assert.equal(twice.code, 3);
    assert.equal(trailer(twice.trailers, 'x-modelguard-error'), 'MG_BAD_REQUEST');
    assert.equal(inferCalls(s.demo), before);
  });

  it('x-api-key metadata authenticates like authorization', async () => {
    const r = await call(s.mg, 'ModelInfer', fp32Request('demo-g', [1, 2]), md({ 'x-api-key': KEY }));
    assert.equal((r.value as { model_name: string }).model_name, 'demo-g');
  });

  it('malformed protobuf bytes get INVALID_ARGUMENT with the trailer, and the process keeps serving', async () => {
    const before = inferCalls(s.demo);
    for (const garbage of [Buffer.from('this is not protobuf at all'), Buffer.from([0x2a, 0x05, 0x0a]), Buffer.from([0x0f])]) {
      const f = await failure(rawCall(s.gw.grpcUrl, methodPath('ModelInfer'), garbage, auth(KEY)));
      assert.equal(f.code, 3, f.details);
      assert.equal(trailer(f.trailers, 'x-modelguard-error'), 'MG_BAD_REQUEST');
    }
    const meta = await failure(rawCall(s.gw.grpcUrl, methodPath('ModelMetadata'), Buffer.from([0x0a, 0x09, 0x61, 0x0f]), auth(KEY)));
    assert.equal(meta.code, 3);
    assert.equal(inferCalls(s.demo), before);
    assert.deepEqual((await call(s.mg, 'ServerLive', {})).value, { live: true });
  });

  it('tensors whose shape, datatype or raw size disagree get INVALID_ARGUMENT before any backend', async () => {
    const before = inferCalls(s.demo);
    const cases: Record<string, unknown>[] = [
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2] } }] },
      { inputs: [{ name: 'input', datatype: 'FLOAT', shape: [1], contents: { fp32_contents: [1] } }] },
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [Buffer.alloc(7)] },
      { inputs: [{ name: 'input', datatype: 'INT8', shape: [1], contents: { int_contents: [300] } }] },
      { inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }], raw_input_contents: [Buffer.from([9, 0, 0, 0, 1])] },
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1] }] },
      { inputs: [] },
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }], raw_input_contents: [f32([1])] },
    ];
    for (const c of cases) {
      for (const model of OK_MODELS) {
        const f = await failure(call(s.mg, 'ModelInfer', { model_name: model, ...c }, auth(KEY)));
        assert.equal(f.code, 3, `${JSON.stringify(c)}: ${f.details}`);
        assert.equal(trailer(f.trailers, 'x-modelguard-error'), 'MG_BAD_REQUEST');
      }
    }
    assert.equal(inferCalls(s.demo), before);
  });

  it('a backend refusal keeps its meaning: an unknown output is INVALID_ARGUMENT from both kinds of backend', async () => {
    for (const model of OK_MODELS) {
      const f = await failure(call(s.mg, 'ModelInfer', { ...fp32Request(model, [1, 2]), outputs: [{ name: 'nope' }] }, auth(KEY)));
      assert.equal(f.code, 3, f.details);
      assert.match(f.details, /unknown output/);
      // The backend's own answer, not a ModelGuard rejection.
      assert.equal(trailer(f.trailers, 'x-modelguard-error'), undefined);
    }
  });

  it('metrics count gRPC requests with protocol="grpc"', async () => {
    await call(s.mg, 'ModelInfer', fp32Request('demo-g', [1]), auth(KEY));
    await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [1])));
    const text = await (await fetch(`${s.gw.adminUrl}/metrics`)).text();
    const ok = text.split('\n').find((l) => l.startsWith('modelguard_requests_total{') && l.includes('protocol="grpc"') && l.includes('model="demo-g"') && l.includes('outcome="OK"'));
    assert.ok(ok, 'an OK gRPC row for demo-g');
    assert.ok(Number(ok.split(' ').pop()) >= 1);
    assert.ok(text.includes('protocol="grpc",outcome="MG_UNAUTHENTICATED"') || /protocol="grpc"[^\n]*outcome="MG_UNAUTHENTICATED"/.test(text));
  });
});

describe('gRPC ingress: message size limits', () => {
  let s: GrpcSetup;
  before(async () => {
    s = await grpcSetup({ grpcModel: { maxBodySize: '200' } });
  });
  after(() => s.close());

  it('a message over the model\'s limit is RESOURCE_EXHAUSTED with MG_TOO_LARGE; under it passes', async () => {
    const before = inferCalls(s.demo);
    const big = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', Array.from({ length: 100 }, (_, i) => i)), auth(KEY)));
    assert.equal(big.code, 8);
    assert.equal(trailer(big.trailers, 'x-modelguard-error'), 'MG_TOO_LARGE');
    assert.equal(inferCalls(s.demo), before);
    await call(s.mg, 'ModelInfer', fp32Request('demo-g', [1, 2, 3, 4]), auth(KEY));
  });
});

describe('HTTP binary-data extension to a gRPC backend', () => {
  let s: GrpcSetup;
  let http: Pool;
  before(async () => {
    s = await grpcSetup();
    http = new Pool(s.gw.httpUrl, { connections: 2 });
  });
  after(async () => {
    await http.close();
    await s.close();
  });

  it('raw tensor bytes after the JSON header go out as raw contents; the answer equals the JSON request\'s', async () => {
    const header = JSON.stringify({ id: 'b1', inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }] });
    const res = await http.request({
      method: 'POST',
      path: '/v2/models/demo-g/infer',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(Buffer.byteLength(header)) },
      body: Buffer.concat([Buffer.from(header), f32([1, 2, 3, 4])]),
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 200, text);
    const json = await send(http, '/v2/models/demo-g/infer', { key: KEY, body: JSON.stringify({ id: 'b1', inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }) });
    assert.deepEqual(JSON.parse(text), JSON.parse(json.body));
    assert.deepEqual((JSON.parse(text) as { outputs: { data: number[] }[] }).outputs[0]?.data, [10, 2.5, 1, 4]);
  });
});
