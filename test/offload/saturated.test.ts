/**
 * `saturated` at 2× overload: the same edge accelerator and the same open-loop load (sent from its
 * own process), once without offload and once with it. With offload the p99 latency and the
 * rejections must be lower, the edge must stay busy (the cloud takes the excess, not the edge's
 * share), and every request the cloud received must be one answered as served by the cloud.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, percentile } from '../helpers/harness.ts';
import { inferencesAt, metricSettles, offloadGateway, openLoopProcess, type Reply } from './helpers.ts';

const SERVICE_MS = 50;
const EDGE_SLOTS = 2;
/** Edge capacity: 2 slots / 50 ms = 40 req/s; the load is twice that. */
const RATE = 80;
const RUN_MS = 3000;

interface Run {
  replies: Pick<Reply, 'status' | 'servedBy' | 'ms'>[];
  edgeServed: number;
  cloudReceived: number;
}

describe('saturated offload at 2x overload', () => {
  let edge: ModelServer;
  let cloud: ModelServer;
  before(async () => {
    edge = await accelerator({ slots: EDGE_SLOTS, serviceTime: SERVICE_MS });
    cloud = await accelerator({ slots: 16, serviceTime: SERVICE_MS, recordLimit: 10_000 });
  });
  after(async () => {
    await edge.close();
    await cloud.close();
  });

  async function run(offload: boolean): Promise<Run & { decisionsCloud: number }> {
    edge.resetStats();
    cloud.resetStats();
    const gw = await offloadGateway({
      edge: [{ url: edge.url, slots: EDGE_SLOTS }],
      cloud: [{ url: cloud.url, slots: 16 }],
      models: [{ name: 'demo', ...(offload ? { offload: { when: 'saturated' } } : {}) }],
      queue: { maxLength: 20, maxWait: '1s' },
    });
    try {
      const replies = await openLoopProcess(gw.httpUrl, 'demo', RATE, RUN_MS);
      const cloudAnswers = replies.filter((x) => x.servedBy === 'cloud').length;
      const decisionsCloud = await metricSettles(gw.adminUrl, 'modelguard_offload_decisions_total', { decision: 'cloud' }, cloudAnswers);
      return { replies, edgeServed: edge.stats().models['demo']?.served ?? 0, cloudReceived: inferencesAt(cloud), decisionsCloud };
    } finally {
      await gw.close();
    }
  }

  it('lowers p99 latency and rejections; the cloud receives only the excess', async () => {
    const base = await run(false);
    const off = await run(true);
    const total = off.replies.length;
    const rejected = (r: Run): number => r.replies.filter((x) => x.status !== 200).length;
    const p99 = (r: Run): number => percentile(r.replies.map((x) => x.ms), 99);
    const cloudAnswers = off.replies.filter((x) => x.status === 200 && x.servedBy === 'cloud').length;
    const edgeAnswers = off.replies.filter((x) => x.status === 200 && x.servedBy === 'edge').length;
    const summary = `without offload: p99 ${p99(base).toFixed(0)}ms, rejected ${rejected(base)}/${total}, edge served ${base.edgeServed}; ` +
      `with offload: p99 ${p99(off).toFixed(0)}ms, rejected ${rejected(off)}/${total}, edge served ${off.edgeServed}, cloud ${off.cloudReceived}`;

    // Without offload the edge cannot keep up: about half the load is refused.
    assert.equal(base.cloudReceived, 0, summary);
    assert.ok(rejected(base) > total * 0.25, summary);
    // With offload: fewer rejections and a much lower tail.
    assert.ok(rejected(off) <= total * 0.02, summary);
    assert.ok(p99(off) < p99(base) * 0.5, summary);
    // The edge stayed busy (at least 80% of what its slots can do over the run): the cloud took
    // only what the edge could not.
    const edgeCapacity = ((EDGE_SLOTS * 1000) / SERVICE_MS) * (RUN_MS / 1000);
    assert.ok(off.edgeServed >= edgeCapacity * 0.8, summary);
    assert.ok(off.cloudReceived <= total - off.edgeServed + 2, summary);
    assert.ok(off.cloudReceived >= total * 0.3, summary);
    // Every request the cloud received was answered as served by it, and counted as such.
    assert.equal(cloudAnswers, off.cloudReceived, summary);
    assert.equal(edgeAnswers + cloudAnswers, total - rejected(off), summary);
    assert.equal(off.decisionsCloud, cloudAnswers, summary);
    console.log(`# ${summary}`);
  });
});
