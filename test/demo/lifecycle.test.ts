import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startModelServer } from '../../src/demo/index.ts';
import { call, inferBody, until, useServers } from './helpers.ts';

const { agent, start } = useServers();

describe('request recording', () => {
  test('echoes x-request-id and records every request, faults included', async () => {
    const server = await start({ models: ['m'], recordLimit: 3 });
    const a = await call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1]), headers: { 'x-request-id': 'id-1', 'x-api-key': 'secret' } });
    assert.equal(a.headers['x-request-id'], 'id-1');
    assert.equal((a.json as { id: string }).id, 'id-1', 'the KServe id falls back to x-request-id');
    assert.equal((await call(agent, `${server.url}/nowhere`, { headers: { 'x-request-id': 'id-2' } })).headers['x-request-id'], 'id-2');
    server.setFault('error500');
    assert.equal((await call(agent, `${server.url}/v2/health/ready`, { headers: { 'x-request-id': 'id-3' } })).status, 500);
    server.setFault('none');
    await call(agent, `${server.url}/v2/health/live`, { headers: { 'x-request-id': 'id-4' } });
    await call(agent, `${server.url}/v2/health/live`);
    assert.deepEqual([...server.receivedIds()].sort(), ['id-1', 'id-2', 'id-3', 'id-4']);
    assert.equal(server.stats().requests, 5);
    const log = server.requests();
    assert.deepEqual(log.map((r) => r.requestId), ['id-3', 'id-4', undefined], 'the newest recordLimit requests, oldest first');
    assert.equal(log[0]?.url, '/v2/health/ready');
    server.resetStats();
    assert.equal(server.receivedIds().size, 0);
    assert.equal(server.stats().requests, 0);
    assert.deepEqual(server.stats().models['m'], { served: 0, cancelled: 0, failed: 0, busyMs: 0 });
  });

  test('keeps the headers the backend saw (to check what a proxy forwards)', async () => {
    const server = await start({ models: ['m'] });
    await call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1]), headers: { 'x-service-group': 'gold' } });
    assert.equal(server.requests()[0]?.headers['x-service-group'], 'gold');
    assert.equal(server.requests()[0]?.method, 'POST');
  });
});

describe('faults', () => {
  test('garbage answers 200 with a body that is not JSON', async () => {
    const server = await start({ models: ['m'], fault: 'garbage' });
    const a = await call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1]) });
    assert.equal(a.status, 200);
    assert.match(String(a.headers['content-type']), /application\/json/);
    assert.throws(() => JSON.parse(a.text) as unknown, SyntaxError);
    assert.equal(server.stats().models['m']?.served, 0, 'a fault never reaches the accelerator');
  });

  test('error500 answers 500; setFault(none) heals', async () => {
    const server = await start({ models: ['m'] });
    server.setFault('error500');
    const a = await call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1]) });
    assert.equal(a.status, 500);
    assert.match((a.json as { error: string }).error, /injected/);
    server.setFault('none');
    assert.equal((await call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1]) })).status, 200);
  });

  test('hang never answers', async () => {
    const server = await start({ models: ['m'] });
    server.setFault('hang');
    await assert.rejects(call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1]), headersTimeout: 100 }), { code: 'UND_ERR_HEADERS_TIMEOUT' });
  });

  test('scope inference: health checks pass while inference fails', async () => {
    const server = await start({ models: ['m'] });
    server.setFault('error500', 'inference');
    assert.equal((await call(agent, `${server.url}/v2/health/ready`)).status, 200);
    assert.equal((await call(agent, `${server.url}/v2/models/m/ready`)).status, 200);
    assert.equal((await call(agent, `${server.url}/v2/models/m/infer`, { body: inferBody([1]) })).status, 500);
    assert.equal((await call(agent, `${server.url}/v1/completions`, { body: { model: 'm', prompt: 'x' } })).status, 500);
  });
});

describe('stop and restart', () => {
  test('a replica that dies and comes back on the same port', async () => {
    const server = await start({ models: ['m'] });
    const { url, port } = server;
    assert.equal((await call(agent, `${url}/v2/health/ready`)).status, 200);
    await server.stop();
    assert.equal(server.listening, false);
    await assert.rejects(call(agent, `${url}/v2/health/ready`), { code: 'ECONNREFUSED' });
    await server.restart();
    assert.equal(server.listening, true);
    assert.equal(server.port, port);
    assert.equal(server.url, url);
    assert.equal((await call(agent, `${url}/v2/models/m/infer`, { body: inferBody([1]) })).status, 200);
    await server.stop();
    await server.stop(); // idempotent
    await server.restart();
    await server.restart(); // idempotent
    assert.equal((await call(agent, `${url}/v2/health/live`)).status, 200);
  });

  test('stop destroys open sockets and forgets in-flight work', async () => {
    const server = await start({ models: ['slow', 'hung'], slots: 1, serviceTime: 10_000 });
    server.setFault('hang', 'inference');
    const hung = call(agent, `${server.url}/v2/models/hung/infer`, { body: inferBody([1]) });
    await until(() => server.stats().requests === 1);
    server.setFault('none');
    const busy = call(agent, `${server.url}/v2/models/slow/infer`, { body: inferBody([1]) });
    const queued = call(agent, `${server.url}/v2/models/slow/infer`, { body: inferBody([2]) });
    await until(() => server.stats().inService === 1 && server.stats().waiting === 1);
    const t0 = performance.now();
    await server.stop();
    const results = await Promise.allSettled([hung, busy, queued]);
    assert.ok(results.every((r) => r.status === 'rejected'), 'every open request fails at once');
    assert.ok(performance.now() - t0 < 1000);
    assert.deepEqual({ inService: server.stats().inService, waiting: server.stats().waiting }, { inService: 0, waiting: 0 });
    assert.equal(server.stats().models['slow']?.cancelled, 2);
    await server.restart();
    server.setServiceTime('slow', 0);
    assert.equal((await call(agent, `${server.url}/v2/models/slow/infer`, { body: inferBody([1]) })).status, 200);
  });

  test('restart after close is an error', async () => {
    const server = await startModelServer({ models: ['m'] });
    await server.close();
    await assert.rejects(server.restart(), /closed/);
  });

  test('restart fails clearly if the port was taken meanwhile', async () => {
    const server = await start({ models: ['m'] });
    await server.stop();
    const squatter = await startModelServer({ port: server.port, models: ['x'] });
    try {
      await assert.rejects(server.restart(), { code: 'EADDRINUSE' });
    } finally {
      await squatter.close();
    }
    await server.restart();
    assert.equal(server.listening, true);
  });
});
