/**
 * Answers name the model the client asked for. KServe v2 / Open Inference Protocol: an infer
 * answer's `model_name` (REST `$inference_response`, gRPC ModelInferResponse.model_name) and model
 * metadata's `name` identify the model of the request. `id-h` and `id-g` are ModelGuard aliases of the
 * backend model `ident`; the backend answers `ident`, the client must read the name it used, over
 * HTTP (JSON and Triton's binary-data framing, whose Inference-Header-Content-Length must then be
 * the renamed header's length) and gRPC. Tensors stay byte for byte as a direct call returns them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auth, call } from '../grpc/helpers.ts';
import { BINARY_ONLY, conformanceSetup, JSON_SAFE, KEY, post, restBody, type Conformance } from './helpers.ts';

const ALIASES = ['id-h', 'id-g'] as const;

describe('model names in answers for aliased models (KServe v2 over HTTP and gRPC)', () => {
  let s: Conformance;
  before(async () => {
    s = await conformanceSetup();
  });
  after(async () => {
    await s.close();
  });

  for (const model of ALIASES) {
    it(`HTTP JSON infer of ${model}: model_name is ${model}; everything else as the direct answer`, async () => {
      const req = restBody(JSON_SAFE, false, 'json');
      const direct = await post(s.direct, '/v2/models/ident/infer', req);
      const viaMg = await post(s.mg, `/v2/models/${model}/infer`, req, KEY);
      assert.equal(viaMg.status, 200, viaMg.text);
      assert.equal(direct.header['model_name'], 'ident');
      assert.equal(viaMg.header['model_name'], model);
      assert.equal(viaMg.text, direct.text.replace('"model_name":"ident"', `"model_name":"${model}"`));
      assert.equal(Number(viaMg.headers['content-length']), viaMg.body.length);
    });

    for (const [form, tensors, inBinary, outputs] of [
      ['binary in, binary out', BINARY_ONLY, true, 'binary'],
      ['JSON in, binary out', JSON_SAFE, false, 'all-binary'],
    ] as const) {
      it(`HTTP binary-data answer (${form}) of ${model}: the header names ${model}, Inference-Header-Content-Length is its new length, the tensor bytes are the backend's`, async () => {
        const req = restBody(tensors, inBinary, outputs);
        const direct = await post(s.direct, '/v2/models/ident/infer', req);
        const viaMg = await post(s.mg, `/v2/models/${model}/infer`, req, KEY);
        assert.equal(viaMg.status, 200, viaMg.text);
        const headerLength = Number(viaMg.headers['inference-header-content-length']);
        const header = viaMg.body.subarray(0, headerLength).toString('utf8');
        assert.equal((JSON.parse(header) as { model_name: string }).model_name, model, 'the header is one JSON object of exactly that length');
        assert.equal(header, direct.text.replace('"model_name":"ident"', `"model_name":"${model}"`));
        assert.equal(Number(viaMg.headers['content-length']), viaMg.body.length);
        const directLength = Number(direct.headers['inference-header-content-length']);
        assert.deepEqual(viaMg.body.subarray(headerLength), direct.body.subarray(directLength), 'the binary tensors, byte for byte');
        for (const t of tensors) assert.deepEqual(viaMg.binary.get(t.name.replace('INPUT', 'OUTPUT')), t.bytes);
      });
    }

    it(`HTTP model metadata and readiness of ${model}: name is ${model}`, async () => {
      for (const path of [`/v2/models/${model}`, `/v2/models/${model}/ready`]) {
        const res = await s.mg.request({ method: 'GET', path, headers: { authorization: `Bearer ${KEY}` } });
        const text = await res.body.text();
        assert.equal(res.statusCode, 200, text);
        assert.equal((JSON.parse(text) as { name: string }).name, model, `${path}: ${text}`);
      }
      const direct = await s.direct.request({ method: 'GET', path: '/v2/models/ident' });
      const d = (await direct.body.json()) as Record<string, unknown>;
      const res = await s.mg.request({ method: 'GET', path: `/v2/models/${model}`, headers: { authorization: `Bearer ${KEY}` } });
      assert.deepEqual(await res.body.json(), { ...d, name: model }, 'the rest of the metadata as the backend gave it');
    });

    it(`gRPC ModelInfer of ${model} (raw contents, as Triton's gRPC client sends): model_name is ${model}; raw outputs byte for byte`, async () => {
      const tensors = [...BINARY_ONLY, ...JSON_SAFE.map((t, i) => ({ ...t, name: `INPUT${i + 10}` }))];
      const req = { id: 'n1', inputs: tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })), raw_input_contents: tensors.map((t) => t.bytes) };
      type Res = { model_name: string; id: string; outputs: unknown[]; raw_output_contents: Buffer[] };
      const direct = await call<Res>(s.directGrpc, 'ModelInfer', { model_name: 'ident', ...req });
      const viaMg = await call<Res>(s.mgGrpc, 'ModelInfer', { model_name: model, ...req }, auth(KEY));
      assert.equal(direct.value.model_name, 'ident');
      assert.equal(viaMg.value.model_name, model);
      assert.equal(viaMg.value.id, 'n1');
      assert.deepEqual(viaMg.value.raw_output_contents, direct.value.raw_output_contents);
      assert.deepEqual(viaMg.value.outputs, direct.value.outputs);
    });

    it(`gRPC ModelMetadata of ${model}: name is ${model}`, async () => {
      const direct = await call<{ name: string; platform: string; inputs: unknown[] }>(s.directGrpc, 'ModelMetadata', { name: 'ident' });
      const viaMg = await call<{ name: string; platform: string; inputs: unknown[] }>(s.mgGrpc, 'ModelMetadata', { name: model }, auth(KEY));
      assert.equal(viaMg.value.name, model);
      assert.deepEqual({ ...viaMg.value, name: 'ident' }, direct.value);
    });
  }

  it('a model that is not an alias keeps the backend\'s own name (nothing rewritten)', async () => {
    const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }));
    const a = await post(s.mg, '/v2/models/demo/infer', { body, headers: { 'content-type': 'application/json' } }, KEY);
    assert.equal(a.status, 200, a.text);
    assert.equal(a.header['model_name'], 'demo');
  });
});
