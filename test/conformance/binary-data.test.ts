/**
 * Triton's binary-data extension and exact tensors through ModelGuard, from the published
 * documents: KServe v2 / Open Inference Protocol (REST and gRPC) and Triton's
 * docs/protocol/extension_binary_data.md. Each request goes to the demo server's identity model
 * directly and through ModelGuard (to its HTTP backend and to its gRPC backend); the tensors that
 * come back must be the same bytes, in the same framing, and no endpoint may be ejected.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, auth, failure, trailer } from '../grpc/helpers.ts';
import { parseExact } from '../../src/core/exact-json.ts';
import { BINARY_ONLY, conformanceSetup, JSON_SAFE, KEY, post, restBody, type Conformance, type OutputForm, type WireTensor } from './helpers.ts';

const VIA = [
  ['id-h', 'an HTTP backend'],
  ['id-g', 'a gRPC backend'],
] as const;

const out = (t: WireTensor): string => t.name.replace('INPUT', 'OUTPUT');

describe('binary-data extension and exact tensors (KServe v2 REST ⇄ gRPC)', () => {
  let s: Conformance;
  before(async () => {
    s = await conformanceSetup();
  });
  after(async () => {
    await s.close();
  });

  const forms: [string, WireTensor[], boolean, OutputForm][] = [
    ['binary in, binary out (per output binary_data)', BINARY_ONLY, true, 'binary'],
    ['binary in, binary out (binary_data_output, no outputs named)', BINARY_ONLY, true, 'all-binary'],
    ['JSON in, binary out', JSON_SAFE, false, 'binary'],
    ['binary in, binary out, values JSON could carry', JSON_SAFE, true, 'binary'],
  ];
  for (const [name, tensors, inBinary, outputs] of forms) {
    for (const [model, via] of VIA) {
      it(`${name} to ${via}: the same bytes as a direct call, framed with Inference-Header-Content-Length`, async () => {
        const req = restBody(tensors, inBinary, outputs);
        const direct = await post(s.direct, '/v2/models/ident/infer', req);
        const viaMg = await post(s.mg, `/v2/models/${model}/infer`, req, KEY);
        assert.equal(direct.status, 200, direct.text);
        assert.equal(viaMg.status, 200, viaMg.text);
        assert.ok(viaMg.headers['inference-header-content-length'], 'the answer declares its JSON header length');
        assert.equal(Number(viaMg.headers['content-length']), viaMg.body.length);
        for (const t of tensors) {
          assert.deepEqual(viaMg.binary.get(out(t)), t.bytes, `${out(t)}: the input's bytes, unchanged`);
          assert.deepEqual(viaMg.binary.get(out(t)), direct.binary.get(out(t)), `${out(t)}: as the direct answer`);
        }
        assert.deepEqual(
          (viaMg.header['outputs'] as unknown[]).map((o) => ({ ...(o as object) })),
          (direct.header['outputs'] as unknown[]).map((o) => ({ ...(o as object) })),
          'output names, datatypes, shapes and binary_data_size as the direct answer',
        );
        if (model === 'id-h') {
          // Byte for byte but for the model's name: the client asked for the alias, the backend knows it as `ident`.
          const headerText = direct.text.replace('"model_name":"ident"', '"model_name":"id-h"');
          const expected = Buffer.concat([Buffer.from(headerText), direct.body.subarray(Number(direct.headers['inference-header-content-length']))]);
          assert.deepEqual(viaMg.body, expected, 'HTTP to an HTTP backend: the answer passes byte for byte, named as asked');
          assert.equal(viaMg.headers['inference-header-content-length'], String(Buffer.byteLength(headerText)));
        }
      });
    }
  }

  for (const [model, via] of VIA) {
    it(`binary in, JSON out to ${via}: -0.0, subnormals and 64-bit integers keep every digit`, async () => {
      const req = restBody(JSON_SAFE, true, 'json');
      const direct = await post(s.direct, '/v2/models/ident/infer', req);
      const viaMg = await post(s.mg, `/v2/models/${model}/infer`, req, KEY);
      assert.equal(viaMg.status, 200, viaMg.text);
      assert.equal(viaMg.headers['inference-header-content-length'], undefined, 'a JSON answer is not framed');
      const data = (a: typeof viaMg): unknown => (parseExact(a.text) as { outputs: { data: unknown }[] }).outputs.map((o) => o.data);
      assert.deepEqual(data(viaMg), data(direct));
      for (const t of JSON_SAFE) assert.ok(viaMg.text.includes(`"data":${t.json ?? ''}`), `${out(t)} written as ${t.json ?? ''}: ${viaMg.text}`);
    });

    it(`JSON out of a value JSON cannot carry (NaN) to ${via}: 400 naming the tensor, not null`, async () => {
      const nan = BINARY_ONLY[0] as WireTensor;
      const a = await post(s.mg, `/v2/models/${model}/infer`, restBody([nan], true, 'json'), KEY);
      assert.equal(a.status, 400, a.text);
      assert.match(a.text, /OUTPUT0/);
      assert.match(a.text, /NaN/);
      if (model === 'id-g') assert.equal(a.headers['x-modelguard-error'], 'MG_BAD_REQUEST');
    });
  }

  for (const [model, via] of VIA) {
    it(`gRPC raw_input_contents (as Triton's gRPC client sends) to ${via}: raw_output_contents byte for byte`, async () => {
      const tensors = [...BINARY_ONLY, ...JSON_SAFE.map((t, i) => ({ ...t, name: `INPUT${i + 10}` }))];
      const req = { id: 'g1', inputs: tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })), raw_input_contents: tensors.map((t) => t.bytes) };
      const direct = await call<{ outputs: { name: string }[]; raw_output_contents: Buffer[] }>(s.directGrpc, 'ModelInfer', { model_name: 'ident', ...req });
      const viaMg = await call<{ outputs: { name: string }[]; raw_output_contents: Buffer[] }>(s.mgGrpc, 'ModelInfer', { model_name: model, ...req }, auth(KEY));
      assert.deepEqual(viaMg.value.raw_output_contents.map((b) => Buffer.from(b)), tensors.map((t) => t.bytes));
      assert.deepEqual(viaMg.value.raw_output_contents, direct.value.raw_output_contents);
      assert.deepEqual(viaMg.value.outputs, direct.value.outputs);
      assert.equal(trailer(viaMg.initial, 'x-modelguard-served-by'), 'edge');
    });

    it(`gRPC typed contents with NaN, ±Inf, -0 and 2^63−1 to ${via}: typed answers keep them (none becomes null or 0)`, async () => {
      const req = {
        inputs: [
          { name: 'INPUT0', datatype: 'FP32', shape: [4], contents: { fp32_contents: [NaN, Infinity, -Infinity, -0] } },
          { name: 'INPUT1', datatype: 'FP64', shape: [3], contents: { fp64_contents: [NaN, -0, 5e-324] } },
          { name: 'INPUT2', datatype: 'INT64', shape: [2], contents: { int64_contents: ['9223372036854775807', '-9223372036854775808'] } },
          { name: 'INPUT3', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from([0xff, 0xfe])] } },
        ],
      };
      const viaMg = await call<{ outputs: { name: string; contents: Record<string, unknown[]> }[]; raw_output_contents: Buffer[] }>(s.mgGrpc, 'ModelInfer', { model_name: model, ...req }, auth(KEY));
      const direct = await call(s.directGrpc, 'ModelInfer', { model_name: 'ident', ...req });
      assert.equal(viaMg.value.raw_output_contents.length, 0, 'typed in, typed out');
      const [f32, f64, i64, bytes] = viaMg.value.outputs;
      const same = (a: unknown[] | undefined, b: number[]): void => assert.deepEqual(a?.map((v) => Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : v), b.map((v) => Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : v));
      same(f32?.contents['fp32_contents'], [NaN, Infinity, -Infinity, -0]);
      same(f64?.contents['fp64_contents'], [NaN, -0, 5e-324]);
      assert.deepEqual(i64?.contents['int64_contents']?.map(String), ['9223372036854775807', '-9223372036854775808']);
      assert.deepEqual(bytes?.contents['bytes_contents']?.map((b) => Buffer.from(b as Uint8Array)), [Buffer.from([0xff, 0xfe])]);
      assert.deepEqual(JSON.stringify(viaMg.value.outputs, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)), JSON.stringify(direct.value.outputs, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
    });
  }

  it('a gRPC client with a raw tensor that does not fit its shape gets INVALID_ARGUMENT naming it; nothing reaches the backend', async () => {
    const f = await failure(call(s.mgGrpc, 'ModelInfer', { model_name: 'id-h', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [3] }], raw_input_contents: [Buffer.alloc(8)] }, auth(KEY)));
    assert.equal(f.code, 3);
    assert.match(f.details, /inputs\[0\].*12 raw bytes, got 8/);
  });

  it('classification extension (the published example\'s form): the parameter reaches both backends; answers as direct', async () => {
    const body = Buffer.from(JSON.stringify({ id: '42', inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 8, 7, 6, 5] }], outputs: [{ name: 'output', parameters: { classification: 2 } }] }));
    const req = { body, headers: { 'content-type': 'application/json' } };
    const direct = await post(s.direct, '/v2/models/demo/infer', req);
    assert.equal(direct.status, 200, direct.text);
    // Rows summarised as [sum, mean, min, max]: [10, 2.5, 1, 4] and [26, 6.5, 5, 8]; the top two of each.
    assert.deepEqual(direct.header['outputs'], [{ name: 'output', datatype: 'BYTES', shape: [2, 2], data: ['10:0', '4:3', '26:0', '8:3'] }]);
    for (const model of ['demo', 'demo-g']) {
      const viaMg = await post(s.mg, `/v2/models/${model}/infer`, req, KEY);
      assert.equal(viaMg.status, 200, viaMg.text);
      assert.deepEqual(viaMg.header['outputs'], direct.header['outputs'], model);
    }
    const grpc = await call<{ outputs: { datatype: string; contents: { bytes_contents: Buffer[] } }[] }>(s.mgGrpc, 'ModelInfer', { model_name: 'demo', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }], outputs: [{ name: 'output', parameters: { classification: { int64_param: 1 } } }] }, auth(KEY));
    assert.deepEqual(grpc.value.outputs[0]?.contents.bytes_contents.map(String), ['10:0']);
  });

  it('binary answers in a row (more than the failure threshold) are answers, not failures: no endpoint is ejected', async () => {
    for (let i = 0; i < 6; i++) {
      for (const [model] of VIA) {
        const a = await post(s.mg, `/v2/models/${model}/infer`, restBody(BINARY_ONLY, true, 'all-binary'), KEY);
        assert.equal(a.status, 200, a.text);
        assert.equal(a.headers['x-modelguard-error'], undefined);
      }
    }
    const endpoints = s.gw.broker.status().endpoints;
    assert.equal(endpoints.length, 2);
    for (const e of endpoints) assert.equal(e.healthy, true, `${e.url} still healthy after every binary answer`);
  });
});
