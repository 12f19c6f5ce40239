/**
 * An arrival that finds nothing queued and a free slot starts at once without passing through its
 * group's queue (src/broker/domain.ts), and its group is charged exactly what the queue would have
 * charged. Checked on a real Broker with a real model server: the queue is never touched while the
 * domain is idle and is used as soon as the slot is busy, and the group's virtual time after the
 * same calls is the same either way.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Broker } from '../../src/broker/broker.ts';
import { LinkedQueue } from '../../src/broker/queue.ts';
import { newRecord } from '../../src/core/events.ts';
import type { BackendReply, InferenceCall } from '../../src/core/request.ts';
import { accelerator, inferCall, snapshotFor } from '../helpers/harness.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

let seq = 0;
function infer(): InferenceCall {
  return inferCall(`idle-${seq++}`);
}

function submit(broker: Broker, call: InferenceCall): Promise<BackendReply> {
  const record = newRecord(call.id, 'http', call.receivedAt);
  record.app = 'app-a';
  record.group = 'a';
  return broker.submit(call, { app: 'app-a', group: 'a' }, record);
}

/** Calls to LinkedQueue.prototype.push while `f` runs. */
async function pushesDuring(f: () => Promise<void>): Promise<number> {
  const proto = LinkedQueue.prototype as { push: (this: LinkedQueue<unknown>, value: unknown) => unknown };
  const original = proto.push;
  let pushes = 0;
  proto.push = function (this: LinkedQueue<unknown>, value: unknown) {
    pushes++;
    return original.call(this, value);
  };
  try {
    await f();
  } finally {
    proto.push = original;
  }
  return pushes;
}

/** Group a's virtual time on the backend's domain (white box: the scheduler's own state). */
function passOf(broker: Broker): number {
  const domain = (broker as unknown as { domains: Map<string, { flows: Map<string, { pass: number }> }> }).domains.get('accel');
  return domain?.flows.get('a')?.pass ?? Number.NaN;
}

async function brokerWithOneSlot(): Promise<Broker> {
  const model = await accelerator({ slots: 1, serviceTime: 60 });
  closers.push(() => model.close());
  // Fairness by requests (one unit per call): what a call is charged does not depend on how long it took.
  const broker = new Broker(snapshotFor({ endpoints: [{ url: model.url, slots: 1 }], groups: [{ name: 'a', weight: 4, maxLength: 10, maxWait: '5s' }], gateway: { fairness: 'requests' } }));
  broker.start();
  closers.push(() => broker.close());
  return broker;
}

test('an idle arrival starts without the queue; a busy one waits in it; the charge is the same', { timeout: 30_000 }, async () => {
  const idle = await brokerWithOneSlot();
  // One at a time: every call finds the slot free.
  const idlePushes = await pushesDuring(async () => {
    for (let i = 0; i < 3; i++) assert.equal((await submit(idle, infer())).status, 200);
  });
  assert.equal(idlePushes, 0, 'an arrival to an idle domain went through the queue');

  const busy = await brokerWithOneSlot();
  // Three at once on one slot: the first starts, two wait in the queue.
  const busyPushes = await pushesDuring(async () => {
    const answers = await Promise.all([submit(busy, infer()), submit(busy, infer()), submit(busy, infer())]);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200],
    );
  });
  assert.equal(busyPushes, 2, 'calls that found the slot busy did not wait in the queue');

  // Fairness by requests: one unit per call, no correction at completion. Three calls of a group of
  // weight 4 move its virtual time by 3/4, whichever way they went.
  assert.equal(passOf(idle), 0.75);
  assert.equal(passOf(busy), 0.75);
  const status = idle.status().groups.find((g) => g.name === 'a');
  assert.equal(status?.dispatched, 3);
  assert.equal(status?.queued, 0);
});
