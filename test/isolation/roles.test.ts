/**
 * The same admission through the roles as in one process: controller + broker + two proxies as
 * separate processes, each app overloading the one model server through its own proxy. The
 * broker's queues are the ones that fill: 429 MG_QUEUE_FULL with Retry-After appears, nothing
 * waits past its group's maxWait by more than 100 ms, every request sent gets an answer, and six
 * configuration reloads under that load fail nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../../src/security/identity.ts';
import { acceleratorProcess, delay } from '../helpers/harness.ts';
import { twoProxyCluster, type RoleProcess } from '../helpers/cluster.ts';
import { load, type LoadResult } from './helpers.ts';

const NODE_TOKEN = 'node-token-iso';
const ADMIN_TOKEN = 'admin-token-iso';
const PROXY_TOKENS = { 'proxy-a': 'ptok-a', 'proxy-b': 'ptok-b' } as const;
const KEYS = { a: 'key-iso-a', b: 'key-iso-b' } as const;
const SERVICE_MS = 50;
const SLOTS = 2;
const MAX_WAIT_MS = 400;
const MAX_LENGTH = 10;

function resources(modelUrl: string, generation: number): string {
  const api = 'modelguard.io/v1alpha1';
  const group = (name: string, weight: number): unknown => ({
    apiVersion: api,
    kind: 'ServiceGroup',
    metadata: { name },
    spec: { weight, queue: { maxLength: MAX_LENGTH, maxWait: `${MAX_WAIT_MS}ms` } },
  });
  const docs = [
    {
      apiVersion: api,
      kind: 'Gateway',
      metadata: { name: 'default' },
      spec: {
        nodeTokens: [{ sha256: sha256Hex(NODE_TOKEN) }],
        adminTokens: [{ sha256: sha256Hex(ADMIN_TOKEN) }],
        proxies: Object.entries(PROXY_TOKENS).map(([name, token]) => ({ name, tokens: [{ sha256: sha256Hex(token) }], apps: [`app-${name.slice(-1)}`] })),
        accessLog: { enabled: false },
      },
    },
    { apiVersion: api, kind: 'Backend', metadata: { name: 'accel' }, spec: { endpoints: [{ url: modelUrl, slots: SLOTS }], timeout: '2s', healthCheck: { interval: '1s', timeout: '800ms' } } },
    { apiVersion: api, kind: 'Model', metadata: { name: 'demo' }, spec: { backend: 'accel' } },
    // Each reload changes the weights (a real scheduling change, applied under load).
    group('a', 1 + (generation % 2)),
    group('b', 2 - (generation % 2)),
    { apiVersion: api, kind: 'App', metadata: { name: 'app-a' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha256Hex(KEYS.a) }] } },
    { apiVersion: api, kind: 'App', metadata: { name: 'app-b' }, spec: { serviceGroup: 'b', apiKeys: [{ sha256: sha256Hex(KEYS.b) }] } },
  ];
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

async function version(controller: string): Promise<number> {
  const res = await fetch(`${controller}/api/v1/config`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return ((await res.json()) as { version: number }).version;
}

describe('admission through controller + broker + two proxies (separate processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-iso-roles-'));
  const file = join(dir, 'resources.yaml');
  let model: { url: string; close: () => Promise<void> };
  let controller: RoleProcess;
  const nodes: RoleProcess[] = [];
  const proxies: Record<'a' | 'b', string> = { a: '', b: '' };

  before(async () => {
    model = await acceleratorProcess(['--slots', String(SLOTS), '--service-time', `${SERVICE_MS}ms`]);
    writeFileSync(file, resources(model.url, 0));
    // Every process goes on `nodes` as it starts, so `after` stops them whatever happens here.
    const c = await twoProxyCluster(dir, { node: NODE_TOKEN, proxies: PROXY_TOKENS }, nodes);
    controller = c.controller;
    Object.assign(proxies, c.proxies);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('both apps at 1× capacity each (2× together), six reloads: 429 with Retry-After, no wait past maxWait + 100 ms, every request answered, none failed', { timeout: 60_000 }, async () => {
    const capacity = (SLOTS * 1000) / SERVICE_MS;
    const seconds = 3;
    const first = await version(controller.urls['url']!);
    const runs = Promise.all([load(proxies.a, KEYS.a, 'demo', capacity, seconds * 1000), load(proxies.b, KEYS.b, 'demo', capacity, seconds * 1000)]);
    await delay(300);
    for (let g = 1; g <= 6; g++) {
      writeFileSync(file, resources(model.url, g));
      for (let j = 0; j < 100 && (await version(controller.urls['url']!)) < first + g; j++) await delay(20);
      await delay(250);
    }
    const results: LoadResult[] = await runs;
    assert.equal(await version(controller.urls['url']!), first + 6, 'six reloads were taken');
    const summary = JSON.stringify(results);
    for (const r of results) {
      assert.equal(r.errors, 0, `every request got an answer: ${summary}`);
      const answered = Object.values(r.tally).reduce((a, b) => a + b, 0);
      assert.equal(answered, r.sent, summary);
      for (const k of Object.keys(r.tally)) assert.ok(['200', '429 MG_QUEUE_FULL', '503 MG_QUEUE_TIMEOUT'].includes(k), `nothing failed but by admission: ${k}; ${summary}`);
      assert.ok((r.tally['429 MG_QUEUE_FULL'] ?? 0) > 0 && r.retryAfter === r.tally['429 MG_QUEUE_FULL'], `429 with Retry-After: ${summary}`);
      assert.ok((r.tally['200'] ?? 0) > 0, summary);
      const longest = Math.max(...Object.values(r.maxMs));
      assert.ok(longest <= MAX_WAIT_MS + SERVICE_MS + 100, `the longest answer took ${longest} ms (maxWait ${MAX_WAIT_MS} + service ${SERVICE_MS} + 100): ${summary}`);
    }
  });
});
