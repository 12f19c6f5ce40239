import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IRIS_FEATURES, irisLabel } from '../../src/demo/iris-data.ts';
import { buildIrisOnnx, loadIrisModel, trainIris } from '../../src/demo/onnx/iris-model.ts';
import { concat, int, varint } from '../../src/demo/onnx/protobuf.ts';
import { predictProbabilities } from '../../src/demo/onnx/train.ts';
import { startModelServer, type ModelServer } from '../../src/demo/index.ts';
import { call, inferBody, newAgent } from './helpers.ts';

describe('protobuf writer', () => {
  test('varints match the protobuf encoding', () => {
    assert.deepEqual([...varint(1)], [0x01]);
    assert.deepEqual([...varint(300)], [0xac, 0x02]);
    assert.deepEqual([...varint(-1)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert.deepEqual([...int(1, 8)], [0x08, 0x08]); // field 1, wire type 0, value 8
    assert.deepEqual([...concat([Uint8Array.of(1), Uint8Array.of(2, 3)])], [1, 2, 3]);
  });
});

describe('Iris classifier', () => {
  test('training is deterministic and the ONNX bytes are stable', () => {
    const a = trainIris();
    const b = trainIris();
    assert.deepEqual(a.weights, b.weights);
    assert.deepEqual(buildIrisOnnx(a), buildIrisOnnx(b));
  });

  test('the TypeScript reference classifies ≥ 95% of the training set', () => {
    const model = trainIris();
    const correct = IRIS_FEATURES.filter((row, i) => {
      const p = predictProbabilities(model, row);
      return p.indexOf(Math.max(...p)) === irisLabel(i);
    }).length;
    assert.ok(correct / IRIS_FEATURES.length >= 0.95, `accuracy ${correct}/150`);
  });

  test('onnxruntime runs the generated file and agrees with the reference', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-demo-onnx-'));
    try {
      const model = await loadIrisModel(dir);
      assert.match(model.path, /iris-[0-9a-f]{16}\.onnx$/);
      assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.tmp')), []);
      assert.equal(await loadIrisModel(dir), model, 'one session per cache dir per process');
      const rows = IRIS_FEATURES.slice(0, 10);
      const out = await model.run(Float32Array.from(rows.flat()), rows.length);
      rows.forEach((row, i) => {
        const expected = predictProbabilities(model.classifier, row);
        for (let c = 0; c < 3; c++) assert.ok(Math.abs((out.probabilities[i * 3 + c] ?? NaN) - (expected[c] ?? NaN)) < 1e-4);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('onnx mode over HTTP', () => {
  let server: ModelServer;
  const agent = newAgent();
  before(async () => {
    server = await startModelServer({ mode: 'onnx', models: ['iris', { name: 'side', serviceTime: 5 }] });
  });
  after(async () => {
    await server.close();
    await agent.close();
  });

  test('serves iris (real) next to a simulated model', async () => {
    assert.deepEqual(server.models, ['iris', 'side']);
    const meta = await call(agent, `${server.url}/v2/models/iris`);
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.json, {
      name: 'iris',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
        { name: 'label', datatype: 'INT64', shape: [-1] },
      ],
    });
    const side = await call(agent, `${server.url}/v2/models/side`);
    assert.equal((side.json as { platform: string }).platform, 'modelguard_simulated');
  });

  test('classifies the whole data set with ≥ 90% accuracy through the KServe API', async () => {
    const answer = await call(agent, `${server.url}/v2/models/iris/versions/1/infer`, {
      body: { id: 'batch-1', inputs: [{ name: 'input', shape: [150, 4], datatype: 'FP32', data: IRIS_FEATURES.map((r) => [...r]) }] },
    });
    assert.equal(answer.status, 200, answer.text);
    const body = answer.json as { model_name: string; id: string; outputs: { name: string; shape: number[]; data: number[] }[] };
    assert.equal(body.model_name, 'iris');
    assert.equal(body.id, 'batch-1');
    const label = body.outputs.find((o) => o.name === 'label');
    const probs = body.outputs.find((o) => o.name === 'probabilities');
    assert.deepEqual(label?.shape, [150]);
    assert.deepEqual(probs?.shape, [150, 3]);
    const correct = label.data.filter((l, i) => l === irisLabel(i)).length;
    assert.ok(correct >= 135, `accuracy ${correct}/150`);
    for (let i = 0; i < 150; i++) {
      const sum = probs.data.slice(i * 3, i * 3 + 3).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5);
    }
  });

  test('a setosa row is class 0, a virginica row class 2; outputs can be selected', async () => {
    const setosa = await call(agent, `${server.url}/v2/models/iris/infer`, { body: { ...(inferBody([5.1, 3.5, 1.4, 0.2]) as object), outputs: [{ name: 'label' }] } });
    assert.deepEqual((setosa.json as { outputs: unknown }).outputs, [{ name: 'label', datatype: 'INT64', shape: [1], data: [0] }]);
    const virginica = await call(agent, `${server.url}/v2/models/iris/infer`, { body: inferBody([6.3, 3.3, 6.0, 2.5]) });
    const label = (virginica.json as { outputs: { name: string; data: number[] }[] }).outputs.find((o) => o.name === 'label');
    assert.deepEqual(label?.data, [2]);
    assert.equal(server.stats().models['iris']?.served, 3); // the batch, setosa, virginica
  });

  test('bad iris input is a 400 that names the problem, before any accelerator time', async () => {
    const cases: [unknown, RegExp][] = [
      [inferBody([1, 2, 3]), /shape \[N,4\]/],
      [{ inputs: [{ name: 'input', shape: [1, 4], datatype: 'INT32', data: [1, 2, 3, 4] }] }, /must be FP32/],
      [inferBody([1, 2, 3, 4], [1, 4], 'pixels'), /named "input"/],
      [{ ...(inferBody([1, 2, 3, 4]) as object), outputs: [{ name: 'logits' }] }, /unknown output "logits"/],
    ];
    const before = server.stats().models['iris']?.served;
    for (const [body, message] of cases) {
      const answer = await call(agent, `${server.url}/v2/models/iris/infer`, { body });
      assert.equal(answer.status, 400);
      assert.match((answer.json as { error: string }).error, message);
    }
    assert.equal(server.stats().models['iris']?.served, before);
  });
});
