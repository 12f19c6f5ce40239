/**
 * Batching through the roles: controller, broker and two proxies as separate processes. Each proxy
 * forwards its app's calls one by one; the broker merges calls of both apps into shared backend
 * calls, and each caller gets its own rows back through its own proxy.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../../src/security/identity.ts';
import { twoProxyCluster, type RoleProcess } from '../helpers/cluster.ts';
import { acceleratorProcess, keyFor, pool } from '../helpers/harness.ts';
import { API, ask } from './batching-helpers.ts';

const NODE_TOKEN = 'node-token-batching';
const PROXY_TOKENS = { 'proxy-a': 'ptok-batch-a', 'proxy-b': 'ptok-batch-b' } as const;

function resources(modelUrl: string): string {
  const docs = [
    {
      apiVersion: API,
      kind: 'Gateway',
      metadata: { name: 'default' },
      spec: {
        nodeTokens: [{ sha256: sha256Hex(NODE_TOKEN) }],
        proxies: Object.entries(PROXY_TOKENS).map(([name, token]) => ({ name, tokens: [{ sha256: sha256Hex(token) }], apps: [`app-${name.slice(-1)}`] })),
        accessLog: { enabled: false },
      },
    },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'accel' }, spec: { endpoints: [{ url: modelUrl, slots: 1 }], timeout: '5s', healthCheck: { interval: '1s', timeout: '800ms' } } },
    { apiVersion: API, kind: 'Model', metadata: { name: 'batched' }, spec: { backend: 'accel', backendModel: 'demo', batching: { maxBatchSize: 16, maxDelay: '20ms' } } },
    ...['a', 'b'].flatMap((g) => [
      { apiVersion: API, kind: 'ServiceGroup', metadata: { name: g }, spec: { queue: { maxLength: 100, maxWait: '5s' } } },
      { apiVersion: API, kind: 'App', metadata: { name: `app-${g}` }, spec: { serviceGroup: g, apiKeys: [{ sha256: sha256Hex(keyFor(g)) }] } },
    ]),
  ];
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

describe('batching through controller + broker + two proxies (separate processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-batch-roles-'));
  let model: { url: string; close: () => Promise<void> };
  let broker: RoleProcess;
  const nodes: RoleProcess[] = [];
  const proxies: Record<'a' | 'b', string> = { a: '', b: '' };

  before(async () => {
    model = await acceleratorProcess(['--slots', '1', '--models', 'demo=30ms+1ms/row']);
    writeFileSync(join(dir, 'resources.yaml'), resources(model.url));
    // Every process goes on `nodes` as it starts, so `after` stops them whatever happens here.
    const c = await twoProxyCluster(dir, { node: NODE_TOKEN, proxies: PROXY_TOKENS }, nodes);
    broker = c.broker;
    Object.assign(proxies, c.proxies);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('calls of two apps through their own proxies share backend calls at the broker; each caller gets its own rows', { timeout: 60_000 }, async () => {
    const pa = pool(proxies.a, 16);
    const pb = pool(proxies.b, 16);
    try {
      const n = 12;
      const answers = await Promise.all([
        ...Array.from({ length: n }, (_, i) => ask(pa, 'batched', 'a', 1 + (i % 3))),
        ...Array.from({ length: n }, (_, i) => ask(pb, 'batched', 'b', 1 + (i % 2))),
      ]);
      for (const x of answers) {
        assert.equal(x.status, 200, x.body);
        assert.ok(x.own, `a caller got exactly its own rows and id: ${x.body}`);
      }
      const rows = answers.reduce((s, x) => s + x.rows, 0);
      const metrics = await (await fetch(`${broker.urls['admin']!}/metrics`)).text();
      const calls = Number(/^modelguard_batch_size_count\{model="batched"\} (\S+)$/m.exec(metrics)?.[1]);
      const sum = Number(/^modelguard_batch_size_sum\{model="batched"\} (\S+)$/m.exec(metrics)?.[1]);
      assert.equal(sum, rows, `the broker batched every row: ${metrics.split('\n').filter((l) => l.includes('batch')).join('\n')}`);
      assert.ok(calls < answers.length / 2, `${answers.length} calls from two proxies went in ${calls} backend calls`);
    } finally {
      await pa.close();
      await pb.close();
    }
  });
});
