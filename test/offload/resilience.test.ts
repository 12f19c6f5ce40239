/**
 * Edge autonomy: the cloud is lost mid-run (stopped: connections refused; slow: answers after the
 * breaker's slowCall; hung: never answers) while bursts arrive that the edge alone can serve within
 * their deadline. No request may fail, offloading must stop within a second of the loss (only the
 * breaker's single trial requests reach a broken cloud), and it must resume when the cloud returns.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, delay } from '../helpers/harness.ts';
import { type EdgeAndCloud, type Reply, edgeAndCloud, infer, metric } from './helpers.ts';

const SERVICE_MS = 40;
/** A burst of 12 every 400 ms: 30 req/s against an edge that serves 50 req/s (2 slots × 40 ms). */
const BURST = 12;
const EVERY_MS = 400;
const OPEN_FOR_MS = 300;

describe('losing the cloud mid-run', () => {
  let edge: ModelServer;
  let cloud: ModelServer;
  let gw: Gateway;
  let pool: Pool;
  let setup: EdgeAndCloud;
  before(async () => {
    edge = await accelerator({ slots: 2, serviceTime: SERVICE_MS });
    cloud = await accelerator({ slots: 8, serviceTime: SERVICE_MS, recordLimit: 10_000 });
    setup = await edgeAndCloud({ server: edge, slots: 2 }, { server: cloud, slots: 8 }, {
      models: [{ name: 'demo', offload: { when: 'saturated', breaker: { failureThreshold: 3, slowCall: '300ms', openFor: `${OPEN_FOR_MS}ms` } } }],
      queue: { maxLength: 1000, maxWait: '5s' },
    });
    ({ gw, pool } = setup);
  });
  after(() => setup.close());

  /** Sends bursts for `ms`; returns the answers (awaited at the end) and the wall-clock start. */
  async function phase(ms: number): Promise<{ replies: Promise<Reply[]>; startedAt: number; endedAt: number }> {
    const startedAt = Date.now();
    const pending: Promise<Reply>[] = [];
    const t0 = performance.now();
    for (let i = 0; performance.now() - t0 < ms; i++) {
      for (let j = 0; j < BURST; j++) pending.push(infer(pool, 'demo'));
      await delay(Math.max(0, t0 + (i + 1) * EVERY_MS - performance.now()));
    }
    return { replies: Promise.all(pending), startedAt, endedAt: Date.now() };
  }

  const cloudPostsBetween = (from: number, to: number): number => cloud.requests().filter((r) => r.method === 'POST' && r.at >= from && r.at < to).length;
  const served = (rs: Reply[], by: string): number => rs.filter((r) => r.status === 200 && r.servedBy === by).length;

  it('fails no request, stops offloading within a second, and resumes when the cloud returns', async () => {
    const normal = await phase(1200);

    await cloud.stop(); // unreachable: connections refused
    const down = await phase(1600);
    await cloud.restart();
    const back = await phase(1600);

    cloud.setServiceTime('demo', '2s'); // slow: past slowCall
    const slow = await phase(2000);
    cloud.setServiceTime('demo', SERVICE_MS);
    const fast = await phase(1600);

    cloud.setFault('hang', 'inference'); // hung: probes pass, inference never answers
    const hung = await phase(2000);
    cloud.setFault('none');
    const healed = await phase(1600);

    const all = await Promise.all([normal, down, back, slow, fast, hung, healed].map((p) => p.replies));
    const [rNormal, rDown, rBack, rSlow, rFast, rHung, rHealed] = all as [Reply[], Reply[], Reply[], Reply[], Reply[], Reply[], Reply[]];
    const summary = [['normal', rNormal], ['down', rDown], ['back', rBack], ['slow', rSlow], ['fast', rFast], ['hung', rHung], ['healed', rHealed]]
      .map(([n, rs]) => `${n as string}: edge ${served(rs as Reply[], 'edge')} cloud ${served(rs as Reply[], 'cloud')} failed ${(rs as Reply[]).filter((r) => r.status !== 200).length}`)
      .join('; ');

    // Local capacity suffices for this load: not one request fails, whatever the cloud does.
    for (const rs of all) assert.deepEqual(rs.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.code}`), [], summary);
    // The cloud took part of every burst while it was healthy...
    for (const rs of [rNormal, rBack, rFast, rHealed]) assert.ok(served(rs, 'cloud') >= BURST, summary);
    // ...none while it was down, and (almost) none while slow or hung.
    assert.equal(served(rDown, 'cloud'), 0, summary);
    assert.ok(served(rSlow, 'cloud') <= 1 && served(rHung, 'cloud') <= 1, summary);
    // Within a second of turning slow or hung, only the breaker's trials (one per openFor + slowCall) reach the cloud.
    for (const p of [slow, hung]) {
      const late = cloudPostsBetween(p.startedAt + 1000, p.endedAt);
      const trials = Math.ceil((p.endedAt - p.startedAt - 1000) / OPEN_FOR_MS) + 1;
      assert.ok(late <= trials, `${late} cloud requests after the first second (trials allowed: ${trials}); ${summary}`);
    }
    assert.ok((await metric(gw.adminUrl, 'modelguard_offload_breaker_opened_total', { model: 'demo' })) >= 3, summary);
    assert.equal(await metric(gw.adminUrl, 'modelguard_offload_breaker_state', { model: 'demo' }), 0, summary);
    assert.ok((await metric(gw.adminUrl, 'modelguard_offload_decisions_total', { decision: 'cloud-failed' })) > 0, summary);
    console.log(`# ${summary}`);
  });
});
