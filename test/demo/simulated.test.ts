import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { request } from 'undici';
import { startModelServer, type ModelServer } from '../../src/demo/index.ts';
import { call, inferBody, until, useServers } from './helpers.ts';

const { agent, start } = useServers();

describe('simulated accelerator', () => {
  test('slots=2, 50ms: six concurrent requests take three rounds (≈150ms), never more than 2 at once', async () => {
    const server = await start({ slots: 2, models: [{ name: 'm', serviceTime: '50ms' }] });
    const t0 = performance.now();
    const finished: number[] = [];
    const pending = Array.from({ length: 6 }, () =>
      call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1, 2, 3, 4]) }).then((a) => {
        finished.push(performance.now() - t0);
        return a;
      }),
    );
    await until(() => server.stats().requests === 6);
    await until(() => server.stats().waiting === 4);
    assert.equal(server.stats().inService, 2);
    const answers = await Promise.all(pending);
    const elapsed = performance.now() - t0;
    assert.ok(answers.every((a) => a.status === 200));
    assert.ok(elapsed >= 145 && elapsed < 400, `elapsed ${elapsed.toFixed(1)}ms`);
    finished.sort((a, b) => a - b);
    assert.ok(finished[1]! < finished[2]! && finished[2]! >= 95, `waves ${finished.map((f) => f.toFixed(0)).join(',')}`);
    const stats = server.stats();
    assert.equal(stats.peakConcurrency, 2);
    assert.deepEqual({ inService: stats.inService, waiting: stats.waiting }, { inService: 0, waiting: 0 });
    assert.equal(stats.models['m']?.served, 6);
    const busy = stats.models['m']?.busyMs ?? 0;
    // Timers may fire up to a millisecond early.
    assert.ok(busy >= 290 && busy < 450, `busyMs ${busy}`);
  });

  test('all models share the same slots', async () => {
    const server = await start({ slots: 1, serviceTime: 40, models: ['a', 'b'] });
    const t0 = performance.now();
    await Promise.all(['a', 'b'].map((m) => call(agent, `${server.url}/v2/models/${m}/infer`, { body: inferBody([1]) })));
    assert.ok(performance.now() - t0 >= 78);
    assert.equal(server.stats().peakConcurrency, 1);
    assert.equal(server.stats().models['a']?.served, 1);
    assert.equal(server.stats().models['b']?.served, 1);
  });

  test('setServiceTime changes one model mid-run', async () => {
    const server = await start({ slots: 4, models: ['fast', 'other'] });
    const time = async (m: string): Promise<number> => {
      const t0 = performance.now();
      const a = await call(agent, `${server.url}/v2/models/${m}/infer`, { body: inferBody([1]) });
      assert.equal(a.status, 200);
      return performance.now() - t0;
    };
    assert.ok((await time('fast')) < 40);
    server.setServiceTime('fast', '80ms');
    assert.ok((await time('fast')) >= 78);
    assert.ok((await time('other')) < 40);
    server.setServiceTime('fast', { kind: 'uniform', minMs: 0, maxMs: 1 });
    assert.ok((await time('fast')) < 40);
    assert.throws(() => server.setServiceTime('nope', 1), /unknown model "nope"/);
    assert.throws(() => server.setServiceTime('fast', 'soon'), /not a duration/);
  });

  test('a client that leaves while waiting in line never reaches the accelerator', async () => {
    const server = await start({ slots: 1, models: [{ name: 'm', serviceTime: 60 }] });
    const first = call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1]) });
    await until(() => server.stats().inService === 1);
    const controller = new AbortController();
    const second = request(`${server.url}/v2/models/m/infer`, { dispatcher: agent, method: 'POST', body: JSON.stringify(inferBody([2])), signal: controller.signal });
    await until(() => server.stats().waiting === 1);
    controller.abort();
    await assert.rejects(second);
    await until(() => server.stats().waiting === 0);
    assert.equal((await first).status, 200);
    await until(() => server.stats().inService === 0);
    const m = server.stats().models['m'];
    assert.deepEqual({ served: m?.served, cancelled: m?.cancelled }, { served: 1, cancelled: 1 });
  });

  test('the fake output is a deterministic function of the input', async () => {
    const server = await start({ models: ['m'] });
    const a = await call(agent, `${server.url}/v2/models/m/infer`, { body: { inputs: [{ name: 'x', shape: [2, 3], datatype: 'INT32', data: [[1, 2, 3], [4, 5, 6]] }] } });
    assert.equal(a.status, 200, a.text);
    assert.deepEqual((a.json as { outputs: unknown }).outputs, [{ name: 'output', datatype: 'FP32', shape: [2, 4], data: [6, 2, 1, 3, 15, 5, 4, 6] }]);
    const id = (a.json as { id: string }).id;
    assert.match(id, /^demo-\d+$/);
  });

  test('zero service time: many sequential requests, no waiting, no timers', async () => {
    const server = await start({ models: ['z'] });
    for (let i = 0; i < 200; i++) assert.equal((await call(agent, `${server.url}/v2/models/z/infer`, { body: inferBody([i]) })).status, 200);
    assert.equal(server.stats().models['z']?.served, 200);
    assert.equal(server.stats().peakConcurrency, 1);
  });
});

describe('KServe v2 routes and errors', () => {
  let server: ModelServer;
  before(async () => {
    server = await start({ models: ['m'] });
  });

  test('health, server metadata, model metadata and readiness', async () => {
    assert.deepEqual((await call(agent, `${server.url}/v2/health/live`)).json, { live: true });
    assert.deepEqual((await call(agent, `${server.url}/v2/health/ready`)).json, { ready: true });
    assert.deepEqual((await call(agent, `${server.url}/v2`)).json, { name: 'modelguard-demo', version: '0.1.0', extensions: ['binary_tensor_data', 'classification'] });
    const meta = (await call(agent, `${server.url}/v2/models/m/versions/1`)).json as { name: string; versions: string[]; inputs: unknown[] };
    assert.deepEqual([meta.name, meta.versions], ['m', ['1']]);
    assert.deepEqual((await call(agent, `${server.url}/v2/models/m/ready`)).json, { name: 'm', ready: true });
    assert.equal((await call(agent, `${server.url}/v2/models/m/versions/1/ready`)).status, 200);
  });

  test('404 for unknown models, versions and routes', async () => {
    for (const path of ['/v2/models/nope', '/v2/models/nope/ready', '/v2/models/m/versions/2', '/v2/models/m/whatever', '/v3', '/v2/models']) {
      const a = await call(agent, server.url + path);
      assert.equal(a.status, 404, path);
      assert.equal(typeof (a.json as { error: unknown }).error, 'string');
    }
    const infer = await call(agent, `${server.url}/v2/models/nope/infer`, { body: inferBody([1]) });
    assert.equal(infer.status, 404);
    assert.match((infer.json as { error: string }).error, /unknown model "nope"/);
  });

  test('400 with a reason for malformed inference requests', async () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      ['', /empty/],
      [[1, 2], /JSON object/],
      [{}, /inputs must be a non-empty array/],
      [{ inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [1] }] }, /needs 2 elements, data has 1/],
      [{ inputs: [{ name: 'x', shape: [1], datatype: 'FP99', data: [1] }] }, /datatype must be one of/],
      [{ inputs: [{ name: 'x', shape: [-1], datatype: 'FP32', data: [] }] }, /non-negative integers/],
      [{ inputs: [{ name: 'x', shape: [1], datatype: 'UINT8', data: [300] }] }, /not a valid UINT8/],
      [{ inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [[1], [2]] }] }, /nested deeper/],
      [{ inputs: [{ name: 'x', shape: [1], datatype: 'BOOL', data: [true] }, { name: 'x', shape: [1], datatype: 'BOOL', data: [false] }] }, /unique/],
      [{ id: 7, inputs: [] }, /id must be a string/],
      [{ ...(inferBody([1]) as object), outputs: [{ name: 'nope' }] }, /unknown output "nope"/],
    ];
    for (const [body, message] of cases) {
      const a = await call(agent, `${server.url}/v2/models/m/infer`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
      assert.equal(a.status, 400, `${JSON.stringify(body)} → ${a.text}`);
      assert.match((a.json as { error: string }).error, message);
    }
  });

  test('405 for the wrong method', async () => {
    assert.equal((await call(agent, `${server.url}/v2/models/m/infer`)).status, 405);
    assert.equal((await call(agent, `${server.url}/v2/health/live`, { method: 'POST', body: '{}' })).status, 405);
  });
});

describe('startModelServer options', () => {
  test('rejects impossible configurations', async () => {
    await assert.rejects(startModelServer({ slots: 0 }), /slots/);
    await assert.rejects(startModelServer({ models: ['a', 'a'] }), /listed twice/);
    await assert.rejects(startModelServer({ models: [{ name: 'a', serviceTime: 'soon' }] }), /not a duration/);
    await assert.rejects(startModelServer({ models: [] }), /at least one model/);
    await assert.rejects(startModelServer({ tokenMs: -1 }), /tokenMs/);
  });

  test('starting many servers in one process is cheap', async () => {
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => startModelServer({ models: [`m${i}`] })));
    try {
      const ports = new Set(many.map((s) => s.port));
      assert.equal(ports.size, 20);
      const answers = await Promise.all(many.map((s) => call(agent, `${s.url}/v2/health/ready`)));
      assert.ok(answers.every((a) => a.status === 200));
    } finally {
      await Promise.all(many.map((s) => s.close()));
    }
  });
});
