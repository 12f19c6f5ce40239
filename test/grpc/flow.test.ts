/**
 * Deadlines, cancellation and admission over gRPC: a single slot on the gRPC backend is held by a
 * slow call, so the next call waits in ModelGuard's queue, where its grpc-timeout, its cancellation
 * and the group's queue bound apply. Nothing that was refused or abandoned reaches the backend.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RequestRecord } from '../../src/core/events.ts';
import { waitFor } from '../helpers/harness.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { auth, call, failure, fp32Request, grpcSetup, KEY, trailer, type GrpcSetup } from './helpers.ts';

describe('gRPC deadlines, cancellation and queue limits', () => {
  let s: GrpcSetup;
  const records: RequestRecord[] = [];
  before(async () => {
    // Slow enough that the queued call's fate is decided long before the slot frees.
    s = await grpcSetup({ demo: { serviceTime: '1500ms' }, grpcSlots: 1, def: { groups: [{ name: 'g', maxLength: 1 }] } });
    s.gw.pipeline.events.subscribe((r) => records.push(r));
  });
  after(() => s.close());

  const group = (): { queued: number } => {
    const g = s.gw.broker.status().groups.find((x) => x.name === 'g');
    assert.ok(g);
    return g;
  };
  /** Starts a call that holds the only slot, and waits until it does. */
  const holdSlot = async (): Promise<{ done: Promise<unknown> }> => {
    const done = call(s.mg, 'ModelInfer', fp32Request('demo-g', [1, 2]), auth(KEY));
    await waitFor(() => s.gw.broker.status().endpoints.some((e) => e.backend === 'accel-grpc' && e.inflight === 1), 'the first call to hold the slot');
    return { done }; // wrapped: an async function returning a promise would wait for it
  };

  it('grpc-timeout shorter than the queue wait: DEADLINE_EXCEEDED with MG_QUEUE_TIMEOUT, never sent to the backend', async () => {
    const first = (await holdSlot()).done;
    try {
      // The grpc-timeout header as a client sends it, without this client's own timer: the answer
      // seen is ModelGuard's, whatever the load on this machine does to timer precision.
      const started = performance.now();
      const late = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [3]), auth(KEY, { 'x-request-id': 'late-1', 'grpc-timeout': '600m' })));
      const waited = performance.now() - started;
      assert.equal(late.code, 4, late.details);
      assert.equal(trailer(late.trailers, 'x-modelguard-error'), 'MG_QUEUE_TIMEOUT');
      assert.ok(trailer(late.trailers, 'retry-after'), 'retry-after in the trailers');
      // Answered by ModelGuard before the deadline, not after the slow call.
      assert.ok(waited < 1200, `answered after ${Math.round(waited)}ms`);
      // A client with its own deadline: DEADLINE_EXCEEDED either way; ModelGuard's record says why.
      const own = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [3]), auth(KEY, { 'x-request-id': 'late-2' }), { deadline: Date.now() + 400 }));
      assert.equal(own.code, 4);
      await waitFor(() => records.some((r) => r.id === 'late-2'), 'its record');
      assert.equal(records.find((r) => r.id === 'late-2')?.outcome, 'MG_QUEUE_TIMEOUT');
    } finally {
      await first;
    }
    assert.equal(s.demo.receivedIds().has('late-1'), false);
    assert.equal(s.demo.receivedIds().has('late-2'), false);
    const rec = records.find((r) => r.id === 'late-1');
    assert.equal(rec?.protocol, 'grpc');
    assert.equal(rec?.outcome, 'MG_QUEUE_TIMEOUT');
    assert.equal(rec?.status, 4);
  });

  it('a client cancellation removes the queued call; the backend never receives it', async () => {
    const first = (await holdSlot()).done;
    try {
      let cancel: (() => void) | undefined;
      const queued = failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [4]), auth(KEY, { 'x-request-id': 'cancel-1' }), { onCall: (c) => (cancel = () => c.cancel()) }));
      await waitFor(() => group().queued === 1, 'the second call to queue');
      cancel?.();
      assert.equal((await queued).code, 1);
      await waitFor(() => group().queued === 0, 'the cancelled call to leave the queue');
      await waitFor(() => records.some((r) => r.id === 'cancel-1'), 'its record');
      assert.equal(records.find((r) => r.id === 'cancel-1')?.outcome, 'CANCELLED');
    } finally {
      await first;
    }
    assert.equal(s.demo.receivedIds().has('cancel-1'), false);
  });

  it('a full group queue is RESOURCE_EXHAUSTED with MG_QUEUE_FULL and a retry-after', async () => {
    const first = (await holdSlot()).done;
    const second = call(s.mg, 'ModelInfer', fp32Request('demo-g', [5]), auth(KEY));
    try {
      await waitFor(() => group().queued === 1, 'the second call to queue');
      const full = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [6]), auth(KEY)));
      assert.equal(full.code, 8);
      assert.equal(trailer(full.trailers, 'x-modelguard-error'), 'MG_QUEUE_FULL');
      assert.ok(Number(trailer(full.trailers, 'retry-after')) >= 1);
      assert.ok(Number(trailer(full.trailers, 'x-modelguard-retry-after-ms')) > 0);
    } finally {
      await Promise.all([first, second]);
    }
  });
});

describe('gRPC cancellation reaches a gRPC backend', () => {
  let s: GrpcSetup;
  before(async () => {
    // The demo server has one slot, ModelGuard believes it has four: the second call waits in the
    // backend's own line, where a cancelled gRPC call is dropped (and counted as cancelled). The
    // Backend says so (cancelInFlight: abort); with the default (finish) the call would run on.
    s = await grpcSetup({ demo: { serviceTime: '1500ms', slots: 1 }, grpcBackend: { cancelInFlight: 'abort' } });
  });
  after(() => s.close());

  it('a client that cancels a dispatched call cancels the backend call', async () => {
    const first = call(s.mg, 'ModelInfer', fp32Request('demo-g', [1]), auth(KEY));
    await waitFor(() => s.demo.stats().inService === 1, 'the first call to hold the backend slot');
    let cancel: (() => void) | undefined;
    const second = failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [2]), auth(KEY), { onCall: (c) => (cancel = () => c.cancel()) }));
    await waitFor(() => s.demo.stats().waiting === 1, 'the second call to wait in the backend');
    cancel?.();
    assert.equal((await second).code, 1);
    await waitFor(() => s.demo.stats().waiting === 0, 'the backend to drop the cancelled call');
    assert.equal(s.demo.stats().models['demo']?.cancelled, 1);
    await first;
  });
});

describe('gRPC rate limits', () => {
  let s: GrpcSetup;
  before(async () => {
    s = await grpcSetup({
      def: {
        groups: [{ name: 'g' }],
        extra: [{ apiVersion: 'modelguard.io/v1alpha1', kind: 'App', metadata: { name: 'limited' }, spec: { serviceGroup: 'g', apiKeys: [{ sha256: sha256Hex('key-limited') }], rateLimit: { requestsPerSecond: 0.5, burst: 1 } } }],
      },
    });
  });
  after(() => s.close());

  it('an app over its rate is RESOURCE_EXHAUSTED with MG_RATE_LIMITED and a retry-after; nothing reaches the backend', async () => {
    await call(s.mg, 'ModelInfer', fp32Request('demo-g', [1]), auth('key-limited'));
    const limited = await failure(call(s.mg, 'ModelInfer', fp32Request('demo-g', [1]), auth('key-limited', { 'x-request-id': 'rl-1' })));
    assert.equal(limited.code, 8);
    assert.equal(trailer(limited.trailers, 'x-modelguard-error'), 'MG_RATE_LIMITED');
    assert.ok(Number(trailer(limited.trailers, 'retry-after')) >= 1);
    assert.equal(s.demo.receivedIds().has('rl-1'), false);
  });
});
