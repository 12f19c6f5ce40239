/**
 * One conformance suite for the BackendClient contract (src/dispatch/client.ts), run over every
 * implementation against the demo server: the HTTP client on its REST listener, the KServe v2 gRPC
 * client on its gRPC listener. Same requests, same answers, same failures.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import { Cancel } from '../../src/core/cancel.ts';
import { ConnectionFailure, type BackendClient, type BackendResponse } from '../../src/dispatch/client.ts';
import { GrpcBackendClient } from '../../src/dispatch/clients/grpc.ts';
import { HttpBackendClient } from '../../src/dispatch/clients/http.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, INFER_BODY, waitFor } from '../helpers/harness.ts';

async function text(body: Readable | Buffer): Promise<string> {
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function json(res: BackendResponse): Promise<Record<string, unknown>> {
  return JSON.parse(await text(res.body)) as Record<string, unknown>;
}

const JSON_HEADERS = { 'content-type': 'application/json', 'x-request-id': 'conf-1' };

const IMPLEMENTATIONS: { name: string; make: (demo: ModelServer) => string; client: (url: string) => BackendClient }[] = [
  { name: 'HttpBackendClient (kserve-v2-http)', make: (d) => d.url, client: (url) => new HttpBackendClient(url, 4) },
  { name: 'GrpcBackendClient (kserve-v2-grpc)', make: (d) => d.grpcUrl as string, client: (url) => new GrpcBackendClient(url) },
];

for (const impl of IMPLEMENTATIONS) {
  describe(`BackendClient conformance: ${impl.name}`, () => {
    let demo: ModelServer;
    let client: BackendClient;
    let deadUrl: string;
    before(async () => {
      const dead = await accelerator({ grpcPort: 0 });
      deadUrl = impl.make(dead);
      await dead.close();
      demo = await accelerator({ grpcPort: 0, slots: 1 });
      client = impl.client(impl.make(demo));
    });
    after(async () => {
      await client.close();
      await demo.close();
    });

    it('infer: 200 with the KServe v2 JSON answer', async () => {
      const res = await client.request({ method: 'POST', path: '/v2/models/demo/infer', headers: JSON_HEADERS, body: Buffer.from(INFER_BODY), signal: new Cancel() });
      assert.equal(res.status, 200);
      const doc = await json(res);
      assert.equal(doc['model_name'], 'demo');
      assert.deepEqual(doc['outputs'], [{ name: 'output', datatype: 'FP32', shape: [1, 4], data: [10, 2.5, 1, 4] }]);
      assert.ok(demo.receivedIds().has('conf-1'), 'request metadata reaches the server');
    });

    it('metadata and readiness: 200 with the same documents', async () => {
      const meta = await json(await client.request({ method: 'GET', path: '/v2/models/demo', headers: {}, body: undefined, signal: new Cancel() }));
      assert.deepEqual(meta, { name: 'demo', versions: ['1'], platform: 'modelguard_simulated', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, -1] }], outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 4] }] });
      const ready = await json(await client.request({ method: 'GET', path: '/v2/models/demo/ready', headers: {}, body: undefined, signal: new Cancel() }));
      assert.equal(ready['ready'], true);
      const server = await json(await client.request({ method: 'GET', path: '/v2/health/ready', headers: {}, body: undefined, signal: new Cancel() }));
      assert.equal(server['ready'], true);
    });

    it('the model server\'s refusals keep their meaning: unknown model 404, bad tensor 400', async () => {
      const unknown = await client.request({ method: 'GET', path: '/v2/models/nope', headers: {}, body: undefined, signal: new Cancel() });
      assert.equal(unknown.status, 404);
      await text(unknown.body);
      const bad = await client.request({ method: 'POST', path: '/v2/models/demo/infer', headers: JSON_HEADERS, body: Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [1, 2] }], outputs: [{ name: 'nope' }] })), signal: new Cancel() });
      assert.equal(bad.status, 400);
      assert.match(await text(bad.body), /unknown output/);
    });

    it('a failing server answers 5xx', async () => {
      demo.setFault('error500', 'inference');
      try {
        const res = await client.request({ method: 'POST', path: '/v2/models/demo/infer', headers: JSON_HEADERS, body: Buffer.from(INFER_BODY), signal: new Cancel() });
        assert.ok(res.status >= 500, `status ${res.status}`);
        await text(res.body);
      } finally {
        demo.setFault('none');
      }
    });

    it('probe: true for a ready server, false for a port nobody listens on', async () => {
      assert.equal(await client.probe('/v2/health/ready', 1000), true);
      const dead = impl.client(deadUrl);
      try {
        assert.equal(await dead.probe('/v2/health/ready', 300), false);
      } finally {
        await dead.close();
      }
    });

    it('a refused connection is a ConnectionFailure (safe to retry on another replica)', async () => {
      const dead = impl.client(deadUrl);
      try {
        await assert.rejects(dead.request({ method: 'POST', path: '/v2/models/demo/infer', headers: JSON_HEADERS, body: Buffer.from(INFER_BODY), signal: new Cancel() }), ConnectionFailure);
      } finally {
        await dead.close();
      }
    });

    it('the signal cancels a call waiting in the server: it rejects and the server drops it', async () => {
      demo.setServiceTime('demo', '1500ms');
      try {
        const holder = client.request({ method: 'POST', path: '/v2/models/demo/infer', headers: JSON_HEADERS, body: Buffer.from(INFER_BODY), signal: new Cancel() });
        await waitFor(() => demo.stats().inService === 1, 'the first call to hold the only slot');
        const cancel = new Cancel();
        const waiting = client.request({ method: 'POST', path: '/v2/models/demo/infer', headers: JSON_HEADERS, body: Buffer.from(INFER_BODY), signal: cancel });
        // An HTTP client resolves at the response headers; the answer is still ahead of it here.
        await waitFor(() => demo.stats().waiting === 1, 'the second call to wait for the slot');
        cancel.abort();
        await assert.rejects(waiting.then((r) => text(r.body)));
        await waitFor(() => demo.stats().waiting === 0, 'the server to drop the cancelled call');
        assert.equal(demo.stats().models['demo']?.cancelled, 1);
        await text((await holder).body);
      } finally {
        demo.setServiceTime('demo', 0);
      }
    });
  });
}
