/**
 * Batching is formed at the broker whatever the caller's protocol or the backend's: gRPC callers,
 * MQTT callers and HTTP callers of one model share batches, on a KServe v2 HTTP and a KServe v2
 * gRPC backend; and on the real ONNX demo model a batched answer is bit for bit the unbatched one.
 */
import { renameKserveBody } from '../../src/pipeline/rename.ts';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Gateway } from '../../src/compose/gateway.ts';
import { startGateway } from '../../src/compose/gateway.ts';
import { startModelServer } from '../../src/demo/index.ts';
import { IRIS_FEATURES } from '../../src/demo/iris-data.ts';
import { accelerator, gateway, keyFor, pool, send, snapshotFor } from '../helpers/harness.ts';
import { auth, call, grpcSetup, inferenceClient } from '../grpc/helpers.ts';
import { Caller, errorCode } from '../mqtt/helpers.ts';
import { batchedModel, expectedOutput, rowsBody } from './batching-helpers.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

function batches(gw: Gateway, model: string): { batches: number; requests: number; rows: number } {
  const s = gw.broker.status().batching?.find((b) => b.model === model);
  return { batches: s?.batches ?? 0, requests: s?.requests ?? 0, rows: s?.rows ?? 0 };
}

describe('batching across protocols', () => {
  it('gRPC callers are batched, on a gRPC backend and on an HTTP backend, each answered with its own rows and id', { timeout: 30_000 }, async () => {
    const s = await grpcSetup({
      demo: { slots: 1, serviceTime: 30 },
      grpcSlots: 1,
      grpcModel: { batching: { maxBatchSize: 8, maxDelay: '20ms' } },
    });
    closers.push(() => s.close());
    // The same demo server over HTTP, as a batching Model of its own.
    const http = await gateway({
      endpoints: [{ url: s.demo.url, slots: 1 }],
      models: [],
      groups: [{ name: 'g' }],
      extra: [batchedModel(8, '20ms', 'batched', 'demo')],
    });
    closers.push(() => http.close());
    const httpClient = inferenceClient(http.grpcUrl);
    closers.push(async () => httpClient.close());
    for (const [client, gw, model] of [[s.mg, s.gw, 'demo-g'], [httpClient, http, 'batched']] as const) {
      const n = 6;
      const answers = await Promise.all(
        Array.from({ length: n }, (_, i) => {
          const k = 100 * (i + 1);
          const rows = 1 + (i % 3);
          const data = expectedInput(k, rows);
          return call<{ id: string; outputs: { shape: number[]; contents?: { fp32_contents: number[] } }[]; raw_output_contents?: Buffer[] }>(
            client,
            'ModelInfer',
            { model_name: model, id: `g${i}`, inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 4], contents: { fp32_contents: data } }] },
            auth(keyFor('g')),
          ).then((r) => ({ r: r.value, k, rows, i }));
        }),
      );
      for (const { r, k, rows, i } of answers) {
        assert.equal(r.id, `g${i}`);
        assert.deepEqual(r.outputs[0]?.shape, [rows, 4]);
        const got = r.outputs[0]?.contents?.fp32_contents ?? [...new Float32Array(new Uint8Array(r.raw_output_contents?.[0] ?? []).buffer)];
        assert.deepEqual(got, expectedOutput(k, rows), `${model} caller ${i}`);
      }
      const b = batches(gw, model);
      assert.equal(b.requests, n);
      assert.ok(b.batches < n, `${model}: ${n} gRPC calls went in ${b.batches} backend calls`);
    }
  });

  it('MQTT callers and HTTP callers of one model share batches, each answered with its own rows', { timeout: 30_000 }, async () => {
    const acc = await accelerator({ slots: 1, serviceTime: 30 });
    closers.push(() => acc.close());
    const gw = await startGateway(
      snapshotFor({ endpoints: [{ url: acc.url, slots: 1 }], models: [], groups: [{ name: 'a' }, { name: 'b' }], gateway: { mqtt: { embedded: true } }, extra: [batchedModel(16, '30ms')] }),
      { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', mqtt: 'mqtt://127.0.0.1:0' },
    );
    closers.push(() => gw.close());
    const dev = await Caller.create(gw.mqttUrl ?? '', 4, { username: 'app-a', password: keyFor('a') });
    closers.push(() => dev.close());
    const p = pool(gw.httpUrl, 8);
    closers.push(() => p.close());
    const n = 5;
    const [mqttReplies, httpReplies] = await Promise.all([
      Promise.all(Array.from({ length: n }, (_, i) => dev.request('batched', JSON.parse(rowsBody(`m${i}`, 1000 + 10 * i, 1 + (i % 2))) as Record<string, unknown>))),
      Promise.all(Array.from({ length: n }, (_, i) => send(p, '/v2/models/batched/infer', { key: keyFor('b'), body: rowsBody(`h${i}`, 2000 + 10 * i, 2) }))),
    ]);
    mqttReplies.forEach((r, i) => {
      assert.equal(errorCode(r), undefined, JSON.stringify(r.doc));
      const out = (r.doc['outputs'] as { data: number[] }[])[0];
      assert.deepEqual(out?.data, expectedOutput(1000 + 10 * i, 1 + (i % 2)), `MQTT caller ${i}`);
    });
    httpReplies.forEach((r, i) => {
      assert.equal(r.status, 200, r.body);
      const doc = JSON.parse(r.body) as { id: string; outputs: { data: number[] }[] };
      assert.equal(doc.id, `h${i}`);
      assert.deepEqual(doc.outputs[0]?.data, expectedOutput(2000 + 10 * i, 2), `HTTP caller ${i}`);
    });
    const b = batches(gw, 'batched');
    assert.equal(b.requests, 2 * n);
    assert.ok(b.batches <= n, `${2 * n} calls went in ${b.batches} backend calls`);
  });

  it('on the real ONNX demo model, batched answers are bit-identical to unbatched ones (JSON and binary data)', { timeout: 60_000 }, async () => {
    const onnx = await startModelServer({ mode: 'onnx', slots: 1, serviceTime: 25 });
    closers.push(() => onnx.close());
    const gw = await gateway({
      endpoints: [{ url: onnx.url, slots: 1 }],
      models: ['iris'],
      groups: [{ name: 'a' }, { name: 'b' }],
      extra: [batchedModel(32, '25ms', 'iris-batched', 'iris')],
    });
    closers.push(() => gw.close());
    const p = pool(gw.httpUrl, 32);
    closers.push(() => p.close());
    const requests = Array.from({ length: 12 }, (_, i) => {
      const rows = IRIS_FEATURES.slice(i * 12, i * 12 + 1 + (i % 4));
      const json = JSON.stringify({ id: `q${i}`, inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }] });
      const header = JSON.stringify({ id: `b${i}`, inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', parameters: { binary_data_size: rows.length * 16 } }], parameters: { binary_data_output: true } });
      const binary = Buffer.concat([Buffer.from(header), Buffer.from(new Float32Array(rows.flat()).buffer)]);
      return { json, binary, headerLength: Buffer.byteLength(header) };
    });
    const ask = async (model: string, r: (typeof requests)[number], form: 'json' | 'binary', group: string): Promise<{ status: number; body: Buffer; headerLength: string | undefined }> => {
      const res = await p.request({
        method: 'POST',
        path: `/v2/models/${model}/infer`,
        headers: {
          authorization: `Bearer ${keyFor(group)}`,
          ...(form === 'json' ? { 'content-type': 'application/json' } : { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(r.headerLength) }),
        },
        body: form === 'json' ? r.json : r.binary,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      const h = res.headers['inference-header-content-length'];
      return { status: res.statusCode, body, headerLength: typeof h === 'string' ? h : undefined };
    };
    for (const form of ['json', 'binary'] as const) {
      const before = batches(gw, 'iris-batched');
      const batched = await Promise.all(requests.map((r, i) => ask('iris-batched', r, form, i % 2 === 0 ? 'a' : 'b')));
      const after = batches(gw, 'iris-batched');
      assert.ok(after.batches - before.batches < requests.length / 2, `${form}: ${requests.length} calls went in ${after.batches - before.batches} backend calls`);
      for (const [i, r] of requests.entries()) {
        const alone = await ask('iris', r, form, 'a');
        const got = batched[i] as { status: number; body: Buffer; headerLength: string | undefined };
        assert.equal(alone.status, 200, alone.body.toString());
        assert.equal(got.status, 200, got.body.toString());
        // The batched answers name the model asked for (an alias of iris): the unbatched answer with
        // that name set is what every byte must equal.
        const expected = renameKserveBody(alone.body, alone.headerLength === undefined ? {} : { 'inference-header-content-length': alone.headerLength }, 'model_name', 'iris-batched');
        assert.equal(got.headerLength, expected.headers['inference-header-content-length'], `${form} request ${i}: header length`);
        assert.ok(got.body.equals(expected.body), `${form} request ${i}: batched ${got.body.toString('latin1')} vs alone ${expected.body.toString('latin1')}`);
      }
    }
  });
});

function expectedInput(k: number, rows: number): number[] {
  const data: number[] = [];
  for (let r = 0; r < rows; r++) data.push(k + r, k + r + 1, k + r + 2, k + r + 3);
  return data;
}
