/**
 * The three roles as separate processes on loopback: a controller, two brokers (one per model
 * server) and three proxies. Configuration flows from files through the controller to every node;
 * apps call through their proxies; the controller can change, break, die and come back without a
 * single failed request.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { sha256Hex } from '../../src/security/identity.ts';
import { acceleratorProcess, delay, INFER_BODY, send, type Answer } from '../helpers/harness.ts';
import { startBrokerProcess, startController, startProxyProcess, type RoleProcess, waitAllReady } from '../helpers/cluster.ts';

const NODE_TOKEN = 'node-token-1';
const ADMIN_TOKEN = 'admin-token-1';
const PROXY_TOKENS = { 'proxy-a': 'ptok-a', 'proxy-b': 'ptok-b', 'proxy-c': 'ptok-c' } as const;
const KEYS = { 'app-a': 'key-app-a', 'app-b': 'key-app-b', 'app-c': 'key-app-c' } as const;

/** The resources, as JSON documents (JSON is YAML); `generation` changes group b's queue length. */
function resources(urls: { one: string; two: string }, generation: number): string {
  const api = 'modelguard.io/v1alpha1';
  const docs = [
    {
      apiVersion: api,
      kind: 'Gateway',
      metadata: { name: 'default' },
      spec: {
        nodeTokens: [{ sha256: sha256Hex(NODE_TOKEN) }],
        adminTokens: [{ sha256: sha256Hex(ADMIN_TOKEN) }],
        proxies: Object.entries(PROXY_TOKENS).map(([name, token]) => ({ name, tokens: [{ sha256: sha256Hex(token) }], apps: [`app-${name.slice(-1)}`] })),
      },
    },
    { apiVersion: api, kind: 'Backend', metadata: { name: 'accel-1' }, spec: { endpoints: [{ url: urls.one, slots: 2 }], nodes: ['node-1'], healthCheck: { interval: '200ms', timeout: '150ms' } } },
    { apiVersion: api, kind: 'Backend', metadata: { name: 'accel-2' }, spec: { endpoints: [{ url: urls.two, slots: 2 }], nodes: ['node-2'], healthCheck: { interval: '200ms', timeout: '150ms' } } },
    { apiVersion: api, kind: 'Model', metadata: { name: 'vision' }, spec: { backend: 'accel-1', backendModel: 'demo' } },
    { apiVersion: api, kind: 'Model', metadata: { name: 'secret' }, spec: { backend: 'accel-2', backendModel: 'demo', visibility: 'private' } },
    { apiVersion: api, kind: 'ServiceGroup', metadata: { name: 'a' }, spec: { weight: 3, queue: { maxLength: 1000, maxWait: '30s' } } },
    { apiVersion: api, kind: 'ServiceGroup', metadata: { name: 'b' }, spec: { weight: 1, queue: { maxLength: 1000 + generation, maxWait: '30s' } } },
    { apiVersion: api, kind: 'App', metadata: { name: 'app-a' }, spec: { serviceGroup: 'a', apiKeys: [{ sha256: sha256Hex(KEYS['app-a']) }] } },
    { apiVersion: api, kind: 'App', metadata: { name: 'app-b' }, spec: { serviceGroup: 'b', apiKeys: [{ sha256: sha256Hex(KEYS['app-b']) }] } },
    { apiVersion: api, kind: 'App', metadata: { name: 'app-c' }, spec: { serviceGroup: 'b', apiKeys: [{ sha256: sha256Hex(KEYS['app-c']) }], models: ['secret'] } },
  ];
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

interface NodeView {
  name: string;
  applied?: { version: number };
  upToDate: boolean;
  healthy: boolean;
}

async function getJson<T>(url: string, path: string): Promise<T> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return (await res.json()) as T;
}

/** Keeps `concurrency` calls outstanding per client until `stop` is set; collects every answer. */
function steadyLoad(clients: { pool: Pool; key: string; model: string }[], concurrency: number): { stop: () => Promise<Answer[]> } {
  let running = true;
  const answers: Answer[] = [];
  const workers = clients.flatMap((c) =>
    Array.from({ length: concurrency }, async () => {
      while (running) answers.push(await send(c.pool, `/v2/models/${c.model}/infer`, { key: c.key, body: INFER_BODY }));
    }),
  );
  return {
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return answers;
    },
  };
}

const failures = (answers: Answer[]): string[] => answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.code ?? ''} ${a.body.slice(0, 120)}`);

describe('controller + 2 brokers + 3 proxies + 2 model servers, as processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-cluster-'));
  const file = join(dir, 'resources.yaml');
  let models: { url: string; close: () => Promise<void> }[] = [];
  let controller: RoleProcess;
  let controllerPort = 0;
  const nodes: RoleProcess[] = [];
  const proxies: Record<string, RoleProcess> = {};
  const pools: Record<string, Pool> = {};
  let urls: { one: string; two: string };
  let generation = 0;

  before(async () => {
    models = await Promise.all([
      acceleratorProcess(['--slots', '2', '--service-time', '10ms']),
      acceleratorProcess(['--slots', '2', '--service-time', '10ms']),
    ]);
    urls = { one: models[0]!.url, two: models[1]!.url };
    writeFileSync(file, resources(urls, generation));
    controller = await startController(dir);
    controllerPort = Number(new URL(controller.urls['url']!).port);
    const ctl = controller.urls['url']!;
    const [b1, b2] = await Promise.all([startBrokerProcess(ctl, 'node-1', NODE_TOKEN), startBrokerProcess(ctl, 'node-2', NODE_TOKEN)]);
    nodes.push(b1, b2);
    const started = await Promise.all([
      startProxyProcess(ctl, 'proxy-a', 'app-a', b1.urls['link']!, { node: NODE_TOKEN, proxy: PROXY_TOKENS['proxy-a'] }),
      startProxyProcess(ctl, 'proxy-b', 'app-b', b1.urls['link']!, { node: NODE_TOKEN, proxy: PROXY_TOKENS['proxy-b'] }),
      startProxyProcess(ctl, 'proxy-c', 'app-c', b2.urls['link']!, { node: NODE_TOKEN, proxy: PROXY_TOKENS['proxy-c'] }),
    ]);
    ['a', 'b', 'c'].forEach((x, i) => {
      proxies[x] = started[i]!;
      pools[x] = new Pool(started[i]!.urls['http']!, { connections: 32 });
    });
    nodes.push(...started);
    // Ready when every proxy reaches its broker and every broker its model server.
    await waitAllReady(nodes);
  });

  after(async () => {
    await Promise.all(Object.values(pools).map((p) => p.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    await controller.stop();
    await Promise.all(models.map((m) => m.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function converged(): Promise<number> {
    const ctl = controller.urls['url']!;
    let last = '';
    for (let i = 0; i < 300; i++) {
      const doc = await getJson<{ version: number; nodes: NodeView[] }>(ctl, '/api/v1/nodes');
      last = JSON.stringify(doc);
      if (doc.nodes.length === 5 && doc.nodes.every((n) => n.upToDate && n.healthy && n.applied?.version === doc.version)) return doc.version;
      await delay(50);
    }
    throw new Error(`nodes did not converge: ${last}`);
  }

  it('every node registers and runs the latest configuration', async () => {
    const version = await converged();
    assert.equal(version, 1);
  });

  it('grants hold end to end, and rejected calls stop at the proxy', async () => {
    const ok = await send(pools['a']!, '/v2/models/vision/infer', { key: KEYS['app-a'], body: INFER_BODY });
    assert.equal(ok.status, 200, ok.body);
    const secret = await send(pools['c']!, '/v2/models/secret/infer', { key: KEYS['app-c'], body: INFER_BODY });
    assert.equal(secret.status, 200, secret.body);
    const denied = await send(pools['a']!, '/v2/models/secret/infer', { key: KEYS['app-a'], body: INFER_BODY });
    assert.equal(denied.status, 404, 'a proxy does not even know private models its app was not granted');
    // app-c's key at app-a's proxy: that proxy serves app-a only.
    const wrongProxy = await send(pools['a']!, '/v2/models/vision/infer', { key: KEYS['app-c'], body: INFER_BODY });
    assert.equal(wrongProxy.status, 401);
    // A forged identity header changes nothing: the broker records app-a.
    const forged = await send(pools['a']!, '/v2/models/vision/infer', { key: KEYS['app-a'], body: INFER_BODY, headers: { 'x-modelguard-app': 'app-b', 'x-service-group': 'b' } });
    assert.equal(forged.status, 200);
    // Straight to a broker without a proxy credential: refused.
    const direct = new Pool(nodes[0]!.urls['link']!);
    const refused = await send(direct, '/v2/models/vision/infer', { key: KEYS['app-a'], body: INFER_BODY, headers: { 'x-modelguard-app': 'app-a', 'x-modelguard-model': 'vision' } });
    assert.equal(refused.status, 401);
    assert.equal(refused.code, 'MG_UNAUTHENTICATED');
    await direct.close();
  });

  it('shares the broker between proxies by the configured weights (3:1)', async () => {
    const status = async (): Promise<Record<string, number>> => {
      const s = await getJson<{ groups: { name: string; dispatched: number }[] }>(nodes[0]!.urls['admin']!, '/api/v1/status');
      return Object.fromEntries(s.groups.map((g) => [g.name, g.dispatched]));
    };
    const load = steadyLoad(
      [
        { pool: pools['a']!, key: KEYS['app-a'], model: 'vision' },
        { pool: pools['b']!, key: KEYS['app-b'], model: 'vision' },
      ],
      12,
    );
    await delay(700); // both queues fill
    const s0 = await status();
    await delay(3000);
    const s1 = await status();
    const answers = await load.stop();
    assert.deepEqual(failures(answers), []);
    const a = s1['a']! - s0['a']!;
    const b = s1['b']! - s0['b']!;
    const ratio = a / b;
    assert.ok(a + b > 200, `enough work measured (${a + b})`);
    assert.ok(Math.abs(ratio - 3) / 3 < 0.1, `a:b = ${a}:${b} = ${ratio.toFixed(2)}, expected 3 within 10%`);
  });

  it('50 configuration changes under steady load: no failed request, every node on the latest version', async () => {
    const load = steadyLoad(
      [
        { pool: pools['a']!, key: KEYS['app-a'], model: 'vision' },
        { pool: pools['b']!, key: KEYS['app-b'], model: 'vision' },
        { pool: pools['c']!, key: KEYS['app-c'], model: 'secret' },
      ],
      3,
    );
    const before = (await getJson<{ version: number }>(controller.urls['url']!, '/api/v1/config')).version;
    for (let i = 0; i < 50; i++) {
      generation++;
      writeFileSync(file, resources(urls, generation));
      // Wait for the controller to take each change, so that all 50 are distinct versions.
      for (let j = 0; j < 100; j++) {
        const v = (await getJson<{ version: number }>(controller.urls['url']!, '/api/v1/config')).version;
        if (v >= before + i + 1) break;
        await delay(20);
      }
    }
    const version = await converged();
    const answers = await load.stop();
    assert.equal(version, before + 50);
    assert.ok(answers.length > 100, `load ran (${answers.length} answers)`);
    assert.deepEqual(failures(answers), []);
  });

  it('a broken configuration is refused with file and line; nodes keep the last good one', async () => {
    const good = await converged();
    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: modelguard.io/v1alpha1\nkind: ServiceGroup\nmetadata: { name: c }\nspec: { weight: -2 }\n');
    let error = '';
    for (let i = 0; i < 200 && !error; i++) {
      error = (await getJson<{ error?: { message: string } }>(controller.urls['url']!, '/api/v1/config')).error?.message ?? '';
      if (!error) await delay(20);
    }
    assert.match(error, /broken\.yaml:4:\d+: .*weight/);
    const ok = await send(pools['b']!, '/v2/models/vision/infer', { key: KEYS['app-b'], body: INFER_BODY });
    assert.equal(ok.status, 200);
    assert.equal(await converged(), good);
    rmSync(join(dir, 'broken.yaml'));
  });

  it('the controller dies under load: no failed request; restarted, nodes re-register and converge', async () => {
    const good = await converged();
    const load = steadyLoad(
      [
        { pool: pools['a']!, key: KEYS['app-a'], model: 'vision' },
        { pool: pools['c']!, key: KEYS['app-c'], model: 'secret' },
      ],
      3,
    );
    await controller.stop(true);
    await delay(1500);
    controller = await startController(dir, `127.0.0.1:${controllerPort}`);
    const version = await converged();
    const answers = await load.stop();
    assert.ok(version >= good, `version ${version} continues from ${good}`);
    assert.ok(answers.length > 50);
    assert.deepEqual(failures(answers), []);
    const listed = await getJson<{ nodes: NodeView[] }>(controller.urls['url']!, '/api/v1/nodes');
    assert.deepEqual(listed.nodes.map((n) => n.name), ['node-1', 'node-2', 'proxy-a', 'proxy-b', 'proxy-c']);
  });
});
