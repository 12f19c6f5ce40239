/**
 * The DataPlane contract (src/broker/plane.ts), run against both implementations the pipeline can
 * be handed: the local Broker (queues, scheduler, slots in this process) and the RemoteBroker a
 * proxy uses (the same calls over the authenticated link to a broker listener). Each case drives
 * the interface itself, with a real model server behind, so the proxy path is held to exactly the
 * broker's answers: the backend's reply, MG_QUEUE_FULL with Retry-After, cancellation of queued
 * work, metadata without queueing, readiness, status, reloads, and whether its answers already name
 * an alias as the client asked (`answersAsAsked`).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Broker } from '../../src/broker/broker.ts';
import type { DataPlane } from '../../src/broker/plane.ts';
import { Cancel, CancelledError } from '../../src/core/cancel.ts';
import { isMGError } from '../../src/core/errors.ts';
import { newRecord } from '../../src/core/events.ts';
import type { BackendReply, InferenceCall } from '../../src/core/request.ts';
import type { Snapshot } from '../../src/core/snapshot.ts';
import { brokerSnapshot, proxySnapshot } from '../../src/config/partition.ts';
import { startBroker } from '../../src/compose/roles.ts';
import { RemoteBroker } from '../../src/link/remote.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, inferCall, snapshotFor, waitFor } from '../helpers/harness.ts';

const TOKEN = 'contract-proxy-token';
const SERVICE_MS = 150;

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

function setup(modelUrl: string, maxLength: number, version = 1): Snapshot {
  return snapshotFor(
    {
      endpoints: [{ url: modelUrl, slots: 1 }],
      groups: [{ name: 'a', maxLength, maxWait: '5s' }],
      gateway: { proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex(TOKEN) }] }] },
    },
    version,
  );
}

interface Made {
  plane: DataPlane;
  /** Applies a new configuration where the implementation takes it (the broker side for a proxy). */
  reload(next: Snapshot): void;
}

const implementations: [string, (full: Snapshot) => Promise<Made>][] = [
  [
    'local Broker',
    async (full) => {
      const b = new Broker(full);
      b.start();
      closers.push(() => b.close());
      return { plane: b, reload: (next) => b.apply(next) };
    },
  ],
  [
    'RemoteBroker over the link',
    async (full) => {
      const broker = await startBroker(brokerSnapshot(full, 'n1'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
      closers.push(() => broker.close());
      const remote = new RemoteBroker(proxySnapshot(full, []), { url: broker.linkUrl, token: TOKEN });
      remote.start();
      closers.push(() => remote.close());
      return { plane: remote, reload: (next) => broker.pipeline.apply(brokerSnapshot(next, 'n1')) };
    },
  ],
];

let seq = 0;
function infer(signal = new Cancel()): InferenceCall {
  return inferCall(`contract-${seq++}`, signal);
}

function metadata(): InferenceCall {
  return { ...infer(), op: 'metadata', method: 'GET', path: '/v2/models/demo', body: undefined, permission: 'metadata' };
}

const who = { app: 'app-a', group: 'a' };

async function text(reply: BackendReply): Promise<string> {
  if (Buffer.isBuffer(reply.body)) return reply.body.toString('utf8');
  const chunks: Buffer[] = [];
  for await (const c of reply.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The record as authentication leaves it: stamped with the caller's app and group. */
function recordOf(call: InferenceCall): ReturnType<typeof newRecord> {
  const r = newRecord(call.id, 'http', call.receivedAt);
  r.app = who.app;
  r.group = who.group;
  return r;
}

function submit(plane: DataPlane, call: InferenceCall): Promise<BackendReply> {
  return plane.submit(call, who, recordOf(call));
}

for (const [name, make] of implementations) {
  describe(`DataPlane: ${name}`, () => {
    it('answers a call with the backend\'s reply, and metadata without queueing', { timeout: 30_000 }, async () => {
      const model = await accelerator({ slots: 1, serviceTime: SERVICE_MS });
      closers.push(() => model.close());
      const { plane } = await make(setup(model.url, 10));
      await waitFor(() => plane.ready(), `${name} ready`);
      const reply = await submit(plane, infer());
      assert.equal(reply.status, 200);
      assert.equal(reply.servedBy, 'edge');
      assert.equal(reply.endpoint, model.url);
      assert.ok(Array.isArray((JSON.parse(await text(reply)) as { outputs?: unknown }).outputs));
      // The slot is busy with a call: metadata is still answered at once.
      const busy = submit(plane, infer());
      const t0 = performance.now();
      const m = metadata();
      const meta = await plane.metadata(m, recordOf(m));
      assert.equal(meta.status, 200);
      assert.equal((JSON.parse(await text(meta)) as { name?: string }).name, 'demo');
      assert.ok(performance.now() - t0 < SERVICE_MS, 'metadata did not wait for the slot');
      await text(await busy);
      // Status describes what this plane sends to: the backend's endpoints, or for a proxy its broker.
      const st = plane.status();
      assert.equal(st.version, 1);
      assert.ok(st.endpoints.length > 0 && st.endpoints.every((e) => e.healthy), JSON.stringify(st.endpoints));
    });

    it('a full group queue is MG_QUEUE_FULL with Retry-After; queued work whose client left is removed', { timeout: 30_000 }, async () => {
      const model = await accelerator({ slots: 1, serviceTime: SERVICE_MS });
      closers.push(() => model.close());
      const { plane } = await make(setup(model.url, 1));
      await waitFor(() => plane.ready(), `${name} ready`);
      const running = submit(plane, infer());
      await new Promise((r) => setTimeout(r, 30));
      const leaving = new Cancel();
      const queued = submit(plane, infer(leaving));
      await new Promise((r) => setTimeout(r, 30));
      const refused = await submit(plane, infer()).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(isMGError(refused) && refused.code === 'MG_QUEUE_FULL', String(refused));
      assert.ok((refused.retryAfterMs ?? 0) > 0, 'Retry-After given');
      leaving.abort();
      await assert.rejects(queued, (err) => err instanceof CancelledError);
      // Its place is free again at once: the next call queues instead of being refused.
      const after = submit(plane, infer());
      assert.equal((await running).status, 200);
      assert.equal((await after).status, 200);
    });

    it('a reload under load drops nothing queued or running', { timeout: 30_000 }, async () => {
      const model = await accelerator({ slots: 1, serviceTime: 60 });
      closers.push(() => model.close());
      const full = setup(model.url, 20);
      const made = await make(full);
      const plane = made.plane;
      await waitFor(() => plane.ready(), `${name} ready`);
      const calls = Array.from({ length: 6 }, () => submit(plane, infer()));
      await new Promise((r) => setTimeout(r, 80));
      made.reload(setup(model.url, 30, 2));
      const replies = await Promise.all(calls);
      assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    });

    it('answersAsAsked tells the truth: an alias\'s answer names the alias exactly when the plane says so', { timeout: 30_000 }, async () => {
      // The pipeline renames an alias's answer only where the plane has not (pipeline/exchange.ts):
      // a plane that claimed it and did not would hand clients the backend's name; one that did and
      // did not say so costs a second rename.
      const model = await accelerator({ slots: 1, serviceTime: 5 });
      closers.push(() => model.close());
      const full = snapshotFor({
        endpoints: [{ url: model.url, slots: 1 }],
        groups: [{ name: 'a', maxLength: 10, maxWait: '5s' }],
        gateway: { proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex(TOKEN) }] }] },
        extra: [{ apiVersion: 'modelguard.io/v1alpha1', kind: 'Model', metadata: { name: 'nickname' }, spec: { backend: 'accel', backendModel: 'demo' } }],
      });
      const { plane } = await make(full);
      await waitFor(() => plane.ready(), `${name} ready`);
      // As the exchange hands it over: the configured model, the backend's path for it.
      const call: InferenceCall = { ...infer(), model: 'nickname' };
      const reply = await submit(plane, call);
      assert.equal(reply.status, 200);
      const named = (JSON.parse(await text(reply)) as { model_name?: string }).model_name;
      assert.equal(named, plane.answersAsAsked ? 'nickname' : 'demo', `answersAsAsked ${String(plane.answersAsAsked)}`);
    });
  });
}
