// The EndpointSet's failure attribution, model health, panic threshold and slot accounting, against
// fake backend clients (no network, no timing beyond a few milliseconds): which outcome counts
// against what (docs/health.md).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { Cancel, CancelledError } from '../../src/core/cancel.ts';
import { MGError } from '../../src/core/errors.ts';
import type { InferenceCall } from '../../src/core/request.ts';
import type { BackendSnapshot } from '../../src/core/snapshot.ts';
import { ConnectionFailure, RequestRejected, type BackendClient, type BackendRequest, type BackendResponse } from '../../src/dispatch/client.ts';
import { EndpointSet } from '../../src/dispatch/endpoint-set.ts';

type Handler = (req: BackendRequest, url: string) => Promise<BackendResponse>;

function backend(urls: string[], extra: Partial<BackendSnapshot> = {}, panicThreshold = 0.5): BackendSnapshot {
  return {
    name: 'b',
    protocol: 'kserve-v2-http',
    endpoints: urls.map((url) => ({ url, slots: 1 })),
    timeoutMs: 1000,
    dispatchAhead: 0,
    healthCheck: { intervalMs: 60_000, timeoutMs: 100, path: undefined, failureThreshold: 3, panicThreshold },
    cancelInFlight: 'finish',
    retryOnReset: true,
    ...extra,
  };
}

function reply(status: number, doc: unknown = {}): BackendResponse {
  const body = Buffer.from(JSON.stringify(doc));
  return { status, headers: { 'content-type': 'application/json' }, body: Readable.from([body]) };
}

/** A set whose endpoints answer through `handler`; probes answer `probe(url)`. */
function setOf(b: BackendSnapshot, handler: Handler, probe: (url: string) => boolean = () => true): { set: EndpointSet; changes: number[] } {
  const changes: number[] = [];
  const set = new EndpointSet(b, {
    onHealthChange: (s) => changes.push(s.endpoints.filter((e) => e.healthy).length),
    client: (url): BackendClient => ({
      request: (req) => handler(req, url),
      probe: () => Promise.resolve(probe(url)),
      close: () => Promise.resolve(),
    }),
  });
  return { set, changes };
}

function call(model: string, signal = new Cancel()): InferenceCall {
  return {
    id: 'x',
    protocol: 'http',
    api: 'kserve-v2',
    op: 'infer',
    model,
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: {},
    body: Buffer.from('{}'),
    timeoutMs: undefined,
    signal,
    receivedAt: performance.now(),
    costHint: undefined,
  };
}

/** Sends one call and waits until its slot is given back; the answer's error (if any). */
async function once(set: EndpointSet, c: InferenceCall, deadlineMs = 1000): Promise<unknown> {
  const sent = set.send(c, performance.now() + deadlineMs);
  const err = await sent.answer.then(() => undefined, (e: unknown) => e);
  await sent.done;
  return err;
}

/** Resolves when the request is aborted (a backend that never answers on its own). */
function hang(req: BackendRequest): Promise<BackendResponse> {
  return new Promise((_, reject) => req.signal.once('abort', () => reject(new Error('aborted'))));
}

describe('EndpointSet: who is to blame', () => {
  it('the caller\'s deadline never counts against the endpoint (the backend\'s own timeout does)', async () => {
    const { set } = setOf(backend(['http://a'], { cancelInFlight: 'abort' }), hang);
    for (let i = 0; i < 5; i++) {
      const err = await once(set, call('m'), 5);
      assert.ok(err instanceof MGError && err.code === 'MG_BACKEND_TIMEOUT');
    }
    const ep = set.endpoints[0]!;
    assert.equal(ep.failures, 0);
    assert.equal(ep.healthy, true);
    // The backend's own timeout (Backend.spec.timeout) is the server's fault.
    const { set: slow } = setOf(backend(['http://a', 'http://b'], { timeoutMs: 5 }), hang);
    for (let i = 0; i < 3; i++) await once(slow, call('m'), 1000);
    assert.ok(slow.endpoints.some((e) => e.failures > 0));
  });

  it('a request the local client refuses for what it carries is MG_BAD_REQUEST and counts nowhere', async () => {
    const { set } = setOf(backend(['http://a']), () => Promise.reject(new RequestRejected('invalid expect header')));
    for (let i = 0; i < 5; i++) {
      const err = await once(set, call('m'));
      assert.ok(err instanceof MGError && err.code === 'MG_BAD_REQUEST', String(err));
    }
    assert.equal(set.endpoints[0]!.failures, 0);
    assert.equal(set.endpoints[0]!.healthy, true);
  });

  it('4xx answers count against nothing', async () => {
    const { set } = setOf(backend(['http://a']), () => Promise.resolve(reply(400, { error: 'bad input' })));
    for (let i = 0; i < 10; i++) assert.equal(await once(set, call('m')), undefined);
    assert.equal(set.endpoints[0]!.failures, 0);
    assert.equal(set.modelRefusal('m'), undefined);
  });

  it('a model that keeps answering 500 is down on that endpoint (502, then a fast refusal); other models and the endpoint are not', async () => {
    const { set, changes } = setOf(backend(['http://a']), (req) => Promise.resolve(req.path.includes('broken') ? reply(500, { error: 'bad model file' }) : reply(200, { outputs: [] })));
    for (let i = 0; i < 3; i++) {
      const err = await once(set, call('broken'));
      assert.ok(err instanceof MGError && err.code === 'MG_BACKEND_ERROR');
      assert.equal(await once(set, call('ok')), undefined, 'a healthy model on the same server is served');
    }
    const refusal = set.modelRefusal('broken');
    assert.ok(refusal instanceof MGError && refusal.code === 'MG_BACKEND_ERROR' && refusal.retryAfterMs !== undefined, String(refusal));
    assert.match(refusal.message, /bad model file/);
    assert.equal(set.pick('broken'), undefined, 'no call of the broken model is sent while it is down');
    assert.ok(set.pick('ok'), 'the healthy model still is');
    assert.equal(set.endpoints[0]!.healthy, true);
    assert.deepEqual(changes, [], 'the endpoint never left service');
  });

  it('the same 5xx from two models with nothing good between is the server\'s: the endpoint is ejected when another stays', async () => {
    const { set } = setOf(backend(['http://a', 'http://b']), (_req, url) => Promise.resolve(url === 'http://a' ? reply(503) : reply(200)));
    const a = set.endpoints[0]!;
    for (const m of ['x', 'y', 'x']) await once(set, call(m), 1000);
    // Sent to a by hand: the set picks the least loaded, and b answers fine.
    for (const m of ['x', 'y', 'x', 'y']) {
      if (!a.healthy) break;
      const sent = set.send(call(m), performance.now() + 1000, a);
      await sent.answer.catch(() => undefined);
      await sent.done;
    }
    assert.equal(a.healthy, false, 'server-wide 5xx ejected it');
    assert.equal(set.endpoints[1]!.healthy, true);
  });

  it('a refused connection ejects at once, but never the last endpoints below the panic threshold', async () => {
    const { set } = setOf(backend(['http://a', 'http://b']), () => Promise.reject(new ConnectionFailure('ECONNREFUSED')));
    const [a, b] = set.endpoints as [typeof set.endpoints[0] & object, typeof set.endpoints[0] & object];
    let sent = set.send(call('m'), performance.now() + 1000, a);
    assert.ok((await sent.answer.catch((e: unknown) => e)) instanceof ConnectionFailure);
    await sent.done;
    assert.equal(a.healthy, false, 'the first refusal ejects a');
    sent = set.send(call('m'), performance.now() + 1000, b);
    await sent.answer.catch(() => undefined);
    await sent.done;
    // Probes pass: b stays (ejecting it would take the backend out); a probe decides instead.
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(b.healthy, true, 'the last endpoint in service is not ejected by failing calls');
    assert.ok(set.anyHealthy);
  });

  it('the only endpoint refusing: probed at once, and a failed probe takes it down', async () => {
    const { set, changes } = setOf(backend(['http://a']), () => Promise.reject(new ConnectionFailure('ECONNREFUSED')), () => false);
    await once(set, call('m'));
    for (let i = 0; i < 50 && set.anyHealthy; i++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(set.anyHealthy, false);
    assert.deepEqual(changes, [0]);
  });

  it('panic: when probes leave fewer than the threshold in service, ejected endpoints take traffic again', async () => {
    let aliveB = true;
    const { set } = setOf(backend(['http://a', 'http://b']), (_r, url) => (url === 'http://a' ? Promise.reject(new ConnectionFailure('ECONNREFUSED')) : Promise.resolve(reply(200))), (url) => url === 'http://a' || aliveB);
    const [a, b] = set.endpoints as [NonNullable<(typeof set.endpoints)[0]>, NonNullable<(typeof set.endpoints)[0]>];
    const sent = set.send(call('m'), performance.now() + 1000, a);
    await sent.answer.catch(() => undefined);
    await sent.done;
    assert.equal(a.healthy, false);
    aliveB = false;
    for (let i = 0; i < 3; i++) await set.health.probeAll();
    assert.equal(b.healthy, false, 'b failed its probes');
    assert.equal(a.healthy, true, 'a (ejected by calls, passing its probes) is back: never eject into an outage');
  });
});

describe('EndpointSet: the slot is held until the server is done', () => {
  it('finish: a caller that leaves is answered at once; the slot is given back when the server answers', async () => {
    let answer!: (r: BackendResponse) => void;
    const { set } = setOf(backend(['http://a']), () => new Promise((r) => (answer = r)));
    const signal = new Cancel();
    const sentAt = performance.now();
    const sent = set.send(call('m', signal), performance.now() + 1000);
    const ep = sent.endpoint;
    assert.equal(ep.inflight, 1);
    signal.abort();
    assert.ok((await sent.answer.catch((e: unknown) => e)) instanceof CancelledError);
    // At least 6 ms by the clock the slot time is measured with (a 5 ms timer may fire a little early by it).
    while (performance.now() - sentAt < 6) await new Promise((r) => setTimeout(r, 2));
    assert.equal(ep.inflight, 1, 'still computing: the slot stays taken');
    assert.equal(set.pick('m'), undefined);
    answer(reply(200, { outputs: [] }));
    const use = await sent.done;
    assert.equal(ep.inflight, 0);
    assert.equal(use.completion.fault, 'none');
    assert.ok(use.ms >= 5, 'the whole slot time is reported for charging');
  });

  it('abort: the call is cancelled with its caller and the slot freed at once', async () => {
    const { set } = setOf(backend(['http://a'], { cancelInFlight: 'abort' }), hang);
    const signal = new Cancel();
    const sent = set.send(call('m', signal), performance.now() + 1000);
    signal.abort();
    assert.ok((await sent.answer.catch((e: unknown) => e)) instanceof CancelledError);
    const use = await sent.done;
    assert.equal(use.completion.fault, 'caller');
    assert.equal(sent.endpoint.inflight, 0);
    assert.equal(sent.endpoint.failures, 0);
  });
});
