/**
 * /metrics against a known load: every counter equals what was sent, histogram counts equal the
 * requests that reached each stage, and waits are plausible for the service time and slots used
 * (bounded below by what the accelerator cannot beat, and consistent with each other).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, gateway, keyFor, pool, send, type Answer } from '../helpers/harness.ts';
import { scrape, total, type Sample } from './helpers.ts';

const SERVICE_MS = 20;
const SLOTS = 2;
const API = 'modelguard.io/v1alpha1';
const LIMITED_KEY = 'key-limited';
const PATH = '/v2/models/demo/infer';
const BODY = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });

/** `workers` clients each sending `each` requests one after another. */
async function fixedLoad(p: Pool, path: string, key: string | undefined, workers: number, each: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let i = 0; i < each; i++) answers.push(await send(p, path, { ...(key ? { key } : {}), body: BODY }));
    }),
  );
  return answers;
}

describe('Prometheus metrics under a known load', () => {
  let acc: ModelServer;
  let gw: Gateway;
  let p: Pool;
  const answers: Record<string, Answer[]> = {};
  const during: Sample[][] = [];
  let final: Sample[];

  before(async () => {
    acc = await accelerator({ slots: SLOTS, serviceTime: SERVICE_MS });
    gw = await gateway({
      endpoints: [{ url: acc.url, slots: SLOTS }],
      groups: [{ name: 'a' }, { name: 'b' }],
      extra: [{ apiVersion: API, kind: 'App', metadata: { name: 'limited' }, spec: { serviceGroup: 'b', apiKeys: [{ sha256: sha256Hex(LIMITED_KEY) }], rateLimit: { requestsPerSecond: 0.1, burst: 1 } } }],
    });
    p = pool(gw.httpUrl);
    let loading = true;
    // Scrape while the load runs, as Prometheus would (faster than it would).
    const scraper = (async () => {
      while (loading) {
        during.push(await scrape(gw.adminUrl));
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const [a, b, none, missing, limited] = await Promise.all([
      fixedLoad(p, PATH, keyFor('a'), 6, 10), // 60 answered
      fixedLoad(p, PATH, keyFor('b'), 4, 10), // 40 answered
      fixedLoad(p, PATH, undefined, 1, 7), // 7 × 401
      fixedLoad(p, '/v2/models/nope/infer', keyFor('a'), 1, 5), // 5 × 404
      fixedLoad(p, PATH, LIMITED_KEY, 1, 5), // 1 answered, 4 × 429 (one token, refilled every 10 s)
    ]);
    loading = false;
    await scraper;
    Object.assign(answers, { a, b, none, missing, limited });
    final = await scrape(gw.adminUrl);
  });

  after(async () => {
    await p.close();
    await gw.close();
    await acc.close();
  });

  it('the load got the answers it was built to get', () => {
    assert.deepEqual(answers['a']!.map((x) => x.status), new Array(60).fill(200));
    assert.deepEqual(answers['b']!.map((x) => x.status), new Array(40).fill(200));
    assert.deepEqual(answers['none']!.map((x) => x.code), new Array(7).fill('MG_UNAUTHENTICATED'));
    assert.deepEqual(answers['missing']!.map((x) => x.code), new Array(5).fill('MG_MODEL_NOT_FOUND'));
    assert.deepEqual(answers['limited']!.map((x) => x.status), [200, 429, 429, 429, 429]);
  });

  it('counts exactly what was sent, by group, app, model and outcome', () => {
    const m = final;
    assert.equal(total(m, 'broker_received_request_total', { group: 'a' }), 65);
    assert.equal(total(m, 'broker_received_request_total', { group: 'b' }), 45);
    assert.equal(total(m, 'broker_received_request_total', { group: 'none' }), 7);
    assert.equal(total(m, 'broker_backend_handled_request_total', { group: 'a' }), 60);
    assert.equal(total(m, 'broker_backend_handled_request_total', { group: 'b' }), 41);
    assert.equal(total(m, 'modelguard_requests_total', { group: 'a', app: 'app-a', model: 'demo', protocol: 'http', outcome: 'OK' }), 60);
    assert.equal(total(m, 'modelguard_requests_total', { group: 'b', app: 'limited', outcome: 'OK' }), 1);
    assert.equal(total(m, 'modelguard_requests_total', { group: 'a', model: 'unknown', outcome: 'MG_MODEL_NOT_FOUND' }), 5);
    assert.equal(total(m, 'modelguard_requests_total'), 117);
    assert.equal(total(m, 'modelguard_rejections_total', { group: 'none', reason: 'MG_UNAUTHENTICATED' }), 7);
    assert.equal(total(m, 'modelguard_rejections_total', { group: 'b', reason: 'MG_RATE_LIMITED' }), 4);
    assert.equal(total(m, 'modelguard_rejections_total'), 16);
    assert.equal(total(m, 'modelguard_rate_limited_total', { app: 'limited' }), 4);
    assert.equal(total(m, 'modelguard_dispatched_total', { group: 'a' }), 60);
    assert.equal(total(m, 'modelguard_dispatched_total', { group: 'b' }), 41);
    assert.equal(total(m, 'modelguard_endpoint_served_total'), 101);
    assert.equal(total(m, 'modelguard_offloaded_total'), 0);
  });

  it('histograms count every request that reached the stage they measure', () => {
    const m = final;
    assert.equal(total(m, 'broker_processing_duration_seconds_count', { group: 'a' }), 60);
    assert.equal(total(m, 'broker_processing_duration_seconds_bucket', { group: 'a', le: '+Inf' }), 60);
    assert.equal(total(m, 'broker_backend_processing_duration_seconds_count', { group: 'a', model: 'demo' }), 60);
    assert.equal(total(m, 'broker_backend_processing_duration_seconds_count', { group: 'b', model: 'demo' }), 41);
    assert.equal(total(m, 'modelguard_request_duration_seconds_count'), 117);
    // Buckets resolve milliseconds.
    for (const le of ['0.0005', '0.001', '0.0025', '0.005', '0.01']) assert.ok(m.some((s) => s.name === 'broker_processing_duration_seconds_bucket' && s.labels['le'] === le), le);
  });

  it('times are plausible: no backend call beats the service time, waits match the queueing', () => {
    const m = final;
    // Every call takes at least the simulated service time: nothing lands in a bucket below it.
    assert.equal(total(m, 'broker_backend_processing_duration_seconds_bucket', { group: 'a', le: '0.01' }), 0);
    const backendMean = total(m, 'broker_backend_processing_duration_seconds_sum', { group: 'a' }) / 60;
    assert.ok(backendMean >= SERVICE_MS / 1000 && backendMean < 0.5, `mean backend time ${backendMean}s`);
    // 10 clients on 2 slots: about 8 wait at any moment, i.e. about 4 service times each.
    const waitA = total(m, 'broker_processing_duration_seconds_sum', { group: 'a' }) / 60;
    const waitB = total(m, 'broker_processing_duration_seconds_sum', { group: 'b' }) / 41;
    for (const w of [waitA, waitB]) assert.ok(w > (SERVICE_MS / 1000) * 0.5 && w < 2, `mean queue wait ${w}s`);
    // Each request's time in ModelGuard covers its wait and its backend call.
    for (const g of ['a', 'b']) {
      const e2e = total(m, 'modelguard_request_duration_seconds_sum', { group: g, model: 'demo' });
      const parts = total(m, 'broker_processing_duration_seconds_sum', { group: g }) + total(m, 'broker_backend_processing_duration_seconds_sum', { group: g });
      assert.ok(e2e >= parts * 0.999, `group ${g}: ${e2e}s in ModelGuard < ${parts}s queued + backend`);
    }
    // …and the clients waited at least that long.
    const clientA = answers['a']!.reduce((n, x) => n + x.ms, 0) / 1000;
    assert.ok(clientA >= total(m, 'modelguard_request_duration_seconds_sum', { group: 'a', model: 'demo' }) * 0.999);
    // Accelerator time: at least the service time of every call.
    assert.ok(total(m, 'modelguard_group_accelerator_seconds_total', { group: 'a' }) >= 60 * (SERVICE_MS / 1000) * 0.99);
  });

  it('gauges seen during the load: a queue formed, slots were full and never exceeded', () => {
    assert.ok(during.length >= 3, `scraped ${during.length} times`);
    const maxQueued = Math.max(...during.map((s) => total(s, 'modelguard_queue_depth')));
    const inflight = during.map((s) => total(s, 'modelguard_endpoint_inflight'));
    assert.ok(maxQueued > 0, 'some scrape saw queued requests');
    assert.equal(Math.max(...inflight), SLOTS, 'some scrape saw every slot busy, none saw more');
    assert.ok(during.every((s) => total(s, 'modelguard_endpoint_utilization') <= 1));
    assert.equal(total(final, 'modelguard_queue_depth'), 0);
    assert.equal(total(final, 'modelguard_endpoint_inflight'), 0);
    assert.equal(total(final, 'modelguard_endpoint_slots'), SLOTS);
    assert.equal(total(final, 'modelguard_endpoint_healthy'), 1);
    assert.equal(total(final, 'modelguard_config_version'), 1);
    assert.equal(total(final, 'modelguard_config_info', { hash: gw.broker.current.hash.slice(0, 12), fairness: 'compute' }), 1);
    assert.equal(total(final, 'modelguard_queue_capacity', { group: 'a' }), 10_000);
  });
});
