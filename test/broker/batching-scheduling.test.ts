/**
 * Inside a batch the scheduler keeps its meaning: members join in the scheduler's order (strict
 * priority first), and a group may not ride in a slot that reserved slots keep from it. Which calls
 * shared a backend call is read from the request records (RequestRecord.batch), not from timing.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { RequestRecord } from '../../src/core/events.ts';
import { accelerator, delay, gateway, keyFor, pool, send, waitFor } from '../helpers/harness.ts';
import { batchedModel, rowsBody } from './batching-helpers.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** Calls grouped by the backend call that carried them (same dispatch instant), in dispatch order. */
function backendCalls(records: RequestRecord[]): string[][] {
  const by = new Map<number, string[]>();
  for (const r of records) {
    if (r.batch === undefined || r.dispatchedAt === undefined) continue;
    by.set(r.dispatchedAt, [...(by.get(r.dispatchedAt) ?? []), r.group ?? '?']);
  }
  return [...by.entries()].sort((x, y) => x[0] - y[0]).map(([, groups]) => groups.sort());
}

async function setup(groups: { name: string; priority?: number; reservedSlots?: number }[], slots: number): Promise<{ records: RequestRecord[]; p: ReturnType<typeof pool> }> {
  // `demo` (150 ms, never batched) occupies slots; `fast` (10 ms) is the batching model's backend model.
  const acc = await accelerator({ slots, models: [{ name: 'demo', serviceTime: 150 }, { name: 'fast', serviceTime: 10 }] });
  closers.push(() => acc.close());
  const gw = await gateway({ endpoints: [{ url: acc.url, slots }], models: ['demo'], groups, extra: [batchedModel(4, '60ms', 'batched', 'fast')] });
  closers.push(() => gw.close());
  const records: RequestRecord[] = [];
  gw.pipeline.events.subscribe((r) => records.push(r));
  const p = pool(gw.httpUrl, 32);
  closers.push(() => p.close());
  return { records, p };
}

describe('batching keeps the scheduler', () => {
  it('callers that all leave while their batch waits for rows cost the accelerator nothing; one that stays is served', { timeout: 30_000 }, async () => {
    const acc = await accelerator({ slots: 1, models: [{ name: 'fast', serviceTime: 10 }] });
    closers.push(() => acc.close());
    const gw = await gateway({ endpoints: [{ url: acc.url, slots: 1 }], models: [], groups: [{ name: 'a' }], extra: [batchedModel(8, '300ms', 'batched', 'fast')] });
    closers.push(() => gw.close());
    const p = pool(gw.httpUrl, 8);
    closers.push(() => p.close());
    const leave = (id: string): Promise<string> => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      return send(p, '/v2/models/batched/infer', { key: keyFor('a'), body: rowsBody(id, 1, 1), signal: ac.signal }).then(
        (a) => `answered ${a.status}`,
        () => 'left',
      );
    };
    assert.deepEqual(await Promise.all([leave('x'), leave('y')]), ['left', 'left']);
    await delay(400);
    assert.equal(acc.stats().models['fast']?.served, 0, 'the accelerator never saw the batch');
    assert.equal(gw.broker.status().batching, undefined, 'no batch was sent');
    assert.equal(gw.broker.status().groups.find((g) => g.name === 'a')?.acceleratorMs, 0, 'nobody was charged');
    const stays = send(p, '/v2/models/batched/infer', { key: keyFor('a'), body: rowsBody('z', 1, 1) });
    await delay(30);
    assert.equal(await leave('w'), 'left');
    const z = await stays;
    assert.equal(z.status, 200, z.body);
    assert.equal(JSON.parse(z.body).id, 'z');
    assert.equal(acc.stats().models['fast']?.served, 1);
    assert.equal(gw.broker.status().batching?.[0]?.requests, 2, 'the one who left still rode along (its rows ran)');
  });

  it('a higher priority fills a batch first; a lower one takes the rows left', { timeout: 30_000 }, async () => {
    const { records, p } = await setup([{ name: 'hi', priority: 10 }, { name: 'lo' }], 1);
    const blocker = send(p, '/v2/models/demo/infer', { key: keyFor('lo'), body: rowsBody('blocker', 1, 1) });
    await delay(30);
    const lo = Array.from({ length: 4 }, (_, i) => send(p, '/v2/models/batched/infer', { key: keyFor('lo'), body: rowsBody(`lo${i}`, 10 * i, 1) }));
    await delay(20);
    const hi = Array.from({ length: 3 }, (_, i) => send(p, '/v2/models/batched/infer', { key: keyFor('hi'), body: rowsBody(`hi${i}`, 100 + 10 * i, 1) }));
    const answers = await Promise.all([blocker, ...lo, ...hi]);
    assert.deepEqual(answers.map((a) => a.status), Array(8).fill(200));
    await waitFor(() => records.filter((r) => r.batch !== undefined).length === 7, 'the records');
    // The three hi calls came last but lead the first batch; the oldest lo call takes its last row.
    assert.deepEqual(backendCalls(records), [['hi', 'hi', 'hi', 'lo'], ['lo', 'lo', 'lo']]);
  });

  it('a group may not ride in a slot that reserved slots keep for a higher priority', { timeout: 30_000 }, async () => {
    const { records, p } = await setup([{ name: 'hi', priority: 10, reservedSlots: 1 }, { name: 'lo' }], 2);
    // hi's long call holds one of the two slots; the other is reserved for hi, so lo waits.
    const blocker = send(p, '/v2/models/demo/infer', { key: keyFor('hi'), body: rowsBody('blocker', 1, 1) });
    await delay(30);
    const lo = Array.from({ length: 3 }, (_, i) => send(p, '/v2/models/batched/infer', { key: keyFor('lo'), body: rowsBody(`lo${i}`, 10 * i, 1) }));
    await delay(20);
    const hi = send(p, '/v2/models/batched/infer', { key: keyFor('hi'), body: rowsBody('hi', 100, 1) });
    const answers = await Promise.all([blocker, ...lo, hi]);
    assert.deepEqual(answers.map((a) => a.status), Array(5).fill(200));
    await waitFor(() => records.filter((r) => r.batch !== undefined).length === 4, 'the records');
    // hi's batch formed in the reserved slot without lo's queued calls; lo went once the long call was done.
    assert.deepEqual(backendCalls(records), [['hi'], ['lo', 'lo', 'lo']]);
    const loDispatch = Math.min(...records.filter((r) => r.group === 'lo' && r.batch !== undefined).map((r) => r.dispatchedAt ?? 0));
    const blockerDone = records.find((r) => r.model === 'demo')!;
    assert.ok(loDispatch >= (blockerDone.dispatchedAt ?? 0) + 140, 'lo was dispatched only when a non-reserved slot was free');
  });
});
