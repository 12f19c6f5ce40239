/**
 * A request cannot eject an endpoint by what it carries. Caller headers or gRPC metadata that name
 * HTTP framing (`expect`, `content-length`, `transfer-encoding`, `upgrade`, `connection`, ...) are
 * not copied into the backend request (HTTP or HTTP/2), and a request the local client still
 * refuses is the request's fault (400 MG_BAD_REQUEST), never a refused connection. (`expect` is
 * the one a standard gRPC client sends; the others HTTP/2 itself refuses at the client.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cancel } from '../../src/core/cancel.ts';
import { RequestRejected } from '../../src/dispatch/client.ts';
import { HttpBackendClient } from '../../src/dispatch/clients/http.ts';
import { forwardable } from '../../src/core/headers.ts';
import { auth, call, fp32Request, grpcSetup, KEY, type GrpcSetup } from '../grpc/helpers.ts';

const FRAMING = { expect: '100-continue' };

describe('request content never ejects an endpoint', () => {
  let s: GrpcSetup;
  before(async () => {
    s = await grpcSetup({ def: { backend: { healthCheck: { interval: '5s', timeout: '1s', failureThreshold: 1 } } } });
  });
  after(async () => {
    await s.close();
  });

  it('gRPC metadata `expect` reaches an HTTP and a gRPC backend without it; no endpoint counts a failure', async () => {
    for (let i = 0; i < 3; i++) {
      for (const model of ['demo', 'demo-g']) {
        const r = await call(s.mg, 'ModelInfer', fp32Request(model, [1, 2, 3, 4]), auth(KEY, FRAMING));
        assert.ok(r.value, `${model} answered`);
      }
    }
    for (const e of s.gw.broker.status().endpoints) {
      assert.equal(e.failures, 0, `${e.backend} ${e.url}`);
      assert.equal(e.healthy, true);
    }
    const seen = s.demo.requests().filter((q) => q.method === 'POST').at(-1);
    assert.equal(seen?.headers['expect'], undefined);
    assert.equal(seen?.headers['upgrade'], undefined);
  });

  it('framing headers are dropped from what a backend is sent, whoever copied them there', () => {
    const h = { 'content-type': 'application/json', expect: '100-continue', 'content-length': '3', 'transfer-encoding': 'chunked', upgrade: 'h2c', connection: 'close', 'keep-alive': '5', te: 'gzip', host: 'x' };
    assert.deepEqual(forwardable(h), { 'content-type': 'application/json' });
    const clean = { 'content-type': 'application/json' };
    assert.equal(forwardable(clean), clean, 'no copy when there is nothing to drop');
  });

  it('a header the HTTP client refuses is the request\'s fault (RequestRejected), not a refused connection', async () => {
    const client = new HttpBackendClient(s.demo.url, 2);
    try {
      await assert.rejects(
        client.request({ method: 'POST', path: '/v2/models/demo/infer', headers: { 'x-note': 'a\r\nb' }, body: Buffer.from('{}'), signal: new Cancel() }),
        (err: unknown) => err instanceof RequestRejected,
      );
    } finally {
      await client.close();
    }
  });
});
