/**
 * gRPC pass-through: a method outside the inference service goes, unchanged, to the gRPC backend of
 * the model named in `x-modelguard-model`, as one unit of scheduled work. The demo server's
 * `modelguard.demo.Echo/Echo` answers the bytes it got and mirrors `x-echo-*` metadata.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ECHO_PATH } from '../../src/demo/grpc.ts';
import { auth, failure, grpcSetup, KEY, md, rawCall, trailer, type GrpcSetup } from './helpers.ts';

describe('gRPC pass-through of other methods', () => {
  let s: GrpcSetup;
  before(async () => {
    s = await grpcSetup();
  });
  after(() => s.close());

  const dispatched = (): number => s.gw.broker.status().groups.find((g) => g.name === 'g')?.dispatched ?? 0;

  it('forwards the message, request metadata (minus identity) and returns the answer, metadata and trailers', async () => {
    const before = dispatched();
    const payload = Buffer.from([0, 1, 2, 3, 250, 251, 252]);
    const bin = Buffer.from([0, 255, 7]);
    const r = await rawCall(s.gw.grpcUrl, ECHO_PATH, payload, auth(KEY, { 'x-modelguard-model': 'demo-g', 'x-echo-color': 'blue', 'x-request-id': 'pt-1' }));
    assert.deepEqual(r.value, payload);
    assert.equal(trailer(r.initial, 'x-echo-color'), 'blue');
    assert.equal(trailer(r.trailers, 'x-trailer-color'), 'blue');
    assert.equal(trailer(r.initial, 'x-modelguard-served-by'), 'edge');
    assert.equal(dispatched(), before + 1, 'scheduled like an inference call');
    const seen = s.demo.requests().find((q) => q.requestId === 'pt-1');
    assert.ok(seen, 'the backend received it');
    assert.equal(seen.url, ECHO_PATH);
    assert.equal(seen.headers['x-echo-color'], 'blue');
    assert.equal(seen.headers['authorization'], undefined);
    assert.equal(seen.headers['x-modelguard-model'], undefined);

    const m = auth(KEY, { 'x-modelguard-model': 'demo-g' });
    m.add('x-echo-blob-bin', bin);
    const b = await rawCall(s.gw.grpcUrl, ECHO_PATH, payload, m);
    assert.deepEqual(b.initial.get('x-echo-blob-bin')[0], bin);
    assert.deepEqual(b.trailers.get('x-trailer-blob-bin')[0], bin);
  });

  it('keeps the backend\'s error status, message and trailers', async () => {
    const f = await failure(rawCall(s.gw.grpcUrl, ECHO_PATH, Buffer.from('x'), auth(KEY, { 'x-modelguard-model': 'demo-g', 'x-echo-status': '9', 'x-echo-why': 'because' })));
    assert.equal(f.code, 9);
    assert.equal(f.details, 'echo: asked for status 9');
    assert.equal(trailer(f.trailers, 'x-trailer-why'), 'because');
    // The backend's answer, not a ModelGuard rejection.
    assert.equal(trailer(f.trailers, 'x-modelguard-error'), undefined);
  });

  it('is governed: no key, a private model, no target, or a non-gRPC backend are refused and reach no backend', async () => {
    const before = s.demo.requests().filter((q) => q.url === ECHO_PATH).length;
    const noKey = await failure(rawCall(s.gw.grpcUrl, ECHO_PATH, Buffer.from('x'), md({ 'x-modelguard-model': 'demo-g' })));
    assert.equal(noKey.code, 16);
    assert.equal(trailer(noKey.trailers, 'x-modelguard-error'), 'MG_UNAUTHENTICATED');
    const secret = await failure(rawCall(s.gw.grpcUrl, ECHO_PATH, Buffer.from('x'), auth(KEY, { 'x-modelguard-model': 'secret' })));
    assert.equal(secret.code, 7);
    assert.equal(trailer(secret.trailers, 'x-modelguard-error'), 'MG_FORBIDDEN');
    const noTarget = await failure(rawCall(s.gw.grpcUrl, ECHO_PATH, Buffer.from('x'), auth(KEY)));
    assert.equal(noTarget.code, 12);
    assert.equal(trailer(noTarget.trailers, 'x-modelguard-error'), 'MG_BAD_REQUEST');
    assert.match(noTarget.details, /x-modelguard-model/);
    const httpBackend = await failure(rawCall(s.gw.grpcUrl, ECHO_PATH, Buffer.from('x'), auth(KEY, { 'x-modelguard-model': 'demo' })));
    assert.equal(httpBackend.code, 12);
    assert.match(httpBackend.details, /kserve-v2-grpc/);
    assert.equal(s.demo.requests().filter((q) => q.url === ECHO_PATH).length, before);
  });

  it('a method the backend does not have comes back UNIMPLEMENTED from the backend', async () => {
    const f = await failure(rawCall(s.gw.grpcUrl, '/no.such.Service/Nothing', Buffer.alloc(0), auth(KEY, { 'x-modelguard-model': 'demo-g' })));
    assert.equal(f.code, 12);
    assert.equal(trailer(f.trailers, 'x-modelguard-error'), undefined);
  });
});
