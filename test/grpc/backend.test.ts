/**
 * The kserve-v2-grpc backend client: failures of a gRPC backend become the same outcomes as an HTTP
 * backend's (a replica that refuses is skipped and the call retried, a failing or garbled answer is
 * MG_BACKEND_ERROR, a dead backend is ejected by its ServerReady probe and readmitted), and its
 * REST ⇄ RPC mapping.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { accelerator, INFER_BODY, send, waitFor } from '../helpers/harness.ts';
import { routeOf } from '../../src/dispatch/clients/grpc.ts';
import { httpStatusFor } from '../../src/core/grpc-status.ts';
import { auth, call, failure, fp32Request, grpcSetup, KEY, trailer, type GrpcSetup } from './helpers.ts';

describe('gRPC backend failures', () => {
  let s: GrpcSetup;
  let http: Pool;
  let deadUrl: string;
  before(async () => {
    // A second replica that is gone: its port refuses connections.
    const dead = await accelerator({ grpcPort: 0 });
    deadUrl = dead.grpcUrl as string;
    await dead.close();
    s = await grpcSetup({ grpcBackend: { healthCheck: { interval: '100ms', timeout: '100ms', failureThreshold: 6 } } });
    http = new Pool(s.gw.httpUrl, { connections: 2 });
  });
  after(async () => {
    await http.close();
    await s.close();
  });

  const grpcEndpoints = (): { url: string; healthy: boolean }[] => s.gw.broker.status().endpoints.filter((e) => e.url === s.demo.grpcUrl || e.url === deadUrl);

  it('a failing or garbled gRPC answer is MG_BACKEND_ERROR, over gRPC and over HTTP', async () => {
    for (const fault of ['error500', 'garbage'] as const) {
      s.demo.setFault(fault, 'inference');
      try {
        const f = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [1]), auth(KEY)));
        assert.equal(f.code, 14, `${fault}: ${f.details}`);
        assert.equal(trailer(f.trailers, 'x-modelguard-error'), 'MG_BACKEND_ERROR');
        const h = await send(http, '/v2/models/demo-g/infer', { key: KEY, body: INFER_BODY });
        assert.equal(h.status, 502, `${fault}: ${h.body}`);
        assert.equal(h.code, 'MG_BACKEND_ERROR');
      } finally {
        s.demo.setFault('none');
      }
    }
    await call(s.mg, 'ModelInfer', fp32Request('demo-g', [1]), auth(KEY));
  });

  it('a stopped gRPC backend is ejected by its ServerReady probe (MG_NO_BACKEND), and readmitted when back', async () => {
    await s.demo.stop();
    try {
      await waitFor(() => grpcEndpoints().every((e) => !e.healthy), 'the gRPC endpoint to be ejected');
      // Both backends live on the stopped server: ModelGuard is not ready to serve.
      await waitFor(() => !s.gw.pipeline.ready(), 'every endpoint to be ejected');
      assert.deepEqual((await call(s.mg, 'ServerReady', {})).value, { ready: false });
      const f = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [1]), auth(KEY)));
      assert.equal(f.code, 14);
      assert.equal(trailer(f.trailers, 'x-modelguard-error'), 'MG_NO_BACKEND');
    } finally {
      await s.demo.restart();
    }
    await waitFor(() => grpcEndpoints().every((e) => e.healthy), 'the gRPC endpoint to come back');
    await call(s.mg, 'ModelInfer', fp32Request('demo-g', [1]), auth(KEY));
  });
});

describe('gRPC backend: a replica that refuses connections', () => {
  let s: GrpcSetup;
  before(async () => {
    const dead = await accelerator({ grpcPort: 0 });
    const deadUrl = dead.grpcUrl as string;
    await dead.close();
    // Long probe interval: the dead replica is found by real traffic, not by a probe.
    s = await grpcSetup({ grpcBackend: { healthCheck: { interval: '60s' } } });
    const grpcUrl = s.demo.grpcUrl as string;
    s.gw.reload({
      ...s.gw.broker.current,
      backends: {
        ...s.gw.broker.current.backends,
        'accel-grpc': { ...(s.gw.broker.current.backends['accel-grpc'] as NonNullable<(typeof s.gw.broker.current.backends)[string]>), endpoints: [{ url: deadUrl, slots: 4 }, { url: grpcUrl, slots: 4 }] },
      },
    });
  });
  after(() => s.close());

  it('every call succeeds: UNAVAILABLE before an answer is retried on the other replica', async () => {
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => call(s.mg, 'ModelInfer', fp32Request('demo-g', [i]), auth(KEY))));
    assert.equal(answers.length, 12);
    const dead = s.gw.broker.status().endpoints.find((e) => e.backend === 'accel-grpc' && e.url !== s.demo.grpcUrl);
    assert.equal(dead?.healthy, false, 'the refusing replica is ejected');
  });
});

describe('gRPC backend client: REST paths to RPCs', () => {
  it('maps every KServe v2 REST route to its RPC, and nothing else', () => {
    assert.deepEqual(routeOf('GET', '/v2'), { method: 'ServerMetadata' });
    assert.deepEqual(routeOf('GET', '/v2/health/live'), { method: 'ServerLive' });
    assert.deepEqual(routeOf('GET', '/v2/health/ready'), { method: 'ServerReady' });
    assert.deepEqual(routeOf('GET', '/v2/models/m%2Fx'), { method: 'ModelMetadata', model: 'm/x' });
    assert.deepEqual(routeOf('GET', '/v2/models/m/versions/3/ready'), { method: 'ModelReady', model: 'm', version: '3' });
    assert.deepEqual(routeOf('POST', '/v2/models/m/infer?x=1'), { method: 'ModelInfer', model: 'm' });
    assert.equal(routeOf('GET', '/v2/models/m/infer'), undefined);
    assert.equal(routeOf('POST', '/v2/repository/index'), undefined);
    assert.equal(routeOf('GET', '/v1/models'), undefined);
  });

  it('maps gRPC statuses to the HTTP statuses a REST backend would answer', () => {
    assert.deepEqual([0, 3, 5, 7, 8, 12, 13, 14, 16].map(httpStatusFor), [200, 400, 404, 403, 429, 501, 500, 500, 401]);
  });
});
