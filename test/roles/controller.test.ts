/**
 * The controller in one process with real agents over loopback HTTP: each node gets only its part
 * of the configuration, the node API needs a node token, and a node that cannot apply a snapshot
 * says why and keeps its last good one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listen, closeServer } from '../../src/net/listen.ts';
import { NodeAgent } from '../../src/controller/agent.ts';
import { Controller } from '../../src/controller/controller.ts';
import { createControllerServer } from '../../src/controller/server.ts';
import { FileSource } from '../../src/controller/source.ts';
import type { Snapshot } from '../../src/core/snapshot.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { waitFor } from '../helpers/harness.ts';

const API = 'modelguard.io/v1alpha1';
const NODE_TOKEN = 'nt-1';

function config(apps: string[]): string {
  const docs: unknown[] = [
    {
      apiVersion: API,
      kind: 'Gateway',
      metadata: { name: 'default' },
      spec: { nodeTokens: [{ sha256: sha256Hex(NODE_TOKEN) }], proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex('pt') }] }] },
    },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'edge-1' }, spec: { endpoints: [{ url: 'http://127.0.0.1:1' }], nodes: ['n1'] } },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'edge-2' }, spec: { endpoints: [{ url: 'http://127.0.0.1:2' }], nodes: ['n2'] } },
    { apiVersion: API, kind: 'Model', metadata: { name: 'm1' }, spec: { backend: 'edge-1', visibility: 'private' } },
    { apiVersion: API, kind: 'Model', metadata: { name: 'm2' }, spec: { backend: 'edge-2', visibility: 'private' } },
    { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'g1' }, spec: {} },
    { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'g2' }, spec: {} },
  ];
  for (const [i, app] of apps.entries()) {
    docs.push({ apiVersion: API, kind: 'App', metadata: { name: app }, spec: { serviceGroup: i === 0 ? 'g1' : 'g2', apiKeys: [{ sha256: sha256Hex(`k-${app}`) }], models: [i === 0 ? 'm1' : 'm2'] } });
  }
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

describe('controller and node agents', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-ctl-'));
  const file = join(dir, 'r.yaml');
  let controller: Controller;
  let server: ReturnType<typeof createControllerServer>;
  let url: string;
  const agents: NodeAgent[] = [];
  const quiet = (): void => undefined;

  before(async () => {
    writeFileSync(file, config(['cam', 'robot']));
    controller = new Controller(new FileSource(dir), { heartbeatMs: 200, log: quiet });
    await controller.start();
    server = createControllerServer(controller);
    url = await listen(server, '127.0.0.1:0');
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    controller.close();
    await closeServer(server);
    rmSync(dir, { recursive: true, force: true });
  });

  function agent(name: string, role: 'broker' | 'proxy', apps: string[], apply: (s: Snapshot) => void, token = NODE_TOKEN): NodeAgent {
    const a = new NodeAgent({ controller: url, name, role, apps, token, waitMs: 2000, log: quiet }, apply);
    agents.push(a);
    return a;
  }

  it('refuses node calls without the node token', async () => {
    const res = await fetch(`${url}/api/v1/nodes`, { method: 'POST', body: JSON.stringify({ name: 'x', role: 'broker' }) });
    assert.equal(res.status, 401);
    const watch = await fetch(`${url}/api/v1/nodes/x/snapshot`);
    assert.equal(watch.status, 401);
  });

  it('gives each node only what it needs', async () => {
    const broker = await agent('n1', 'broker', [], () => undefined).first();
    assert.deepEqual(Object.keys(broker.backends), ['edge-1']);
    assert.deepEqual(Object.keys(broker.models), ['m1']);
    assert.deepEqual(Object.keys(broker.apps), ['cam'], 'only apps that may call its models');
    assert.equal(broker.gateway.proxies.length, 1, 'a broker needs the proxy credentials');

    const proxy = await agent('p-robot', 'proxy', ['robot'], () => undefined).first();
    assert.deepEqual(Object.keys(proxy.apps), ['robot']);
    assert.deepEqual(Object.keys(proxy.models), ['m2'], 'private models its app was granted, nothing else');
    assert.deepEqual(proxy.backends, {}, 'no backend addresses on the app side');
    assert.deepEqual(proxy.gateway.proxies, [], 'no proxy credentials on the app side');
    assert.deepEqual(proxy.gateway.nodeTokenHashes, []);
    assert.deepEqual(Object.keys(proxy.groups).sort(), ['default', 'g2']);
    assert.notEqual(proxy.hash, broker.hash);
    assert.equal(proxy.version, broker.version);
  });

  it('a node that cannot apply a snapshot reports why and keeps its last good one', async () => {
    let applied: Snapshot | undefined;
    const a = agent('p-cam', 'proxy', ['cam'], (s) => {
      if (!s.apps['cam']) throw new Error('app "cam" not in the configuration');
      applied = s;
    });
    const first = await a.first();
    a.run();
    const v1 = first.version;
    writeFileSync(file, config(['robot'])); // cam removed
    await waitFor(() => controller.node('p-cam')?.error !== undefined, 'the refusal to reach the controller', 5000);
    const view = controller.nodeViews().find((n) => n.name === 'p-cam')!;
    assert.match(view.error!.message, /app "cam" not in the configuration/);
    assert.equal(view.applied?.version, v1, 'still on the last good version');
    assert.equal(view.upToDate, false);
    assert.equal(a.current?.version, v1);
    assert.equal(applied, undefined, 'nothing was applied');
    writeFileSync(file, config(['cam', 'robot'])); // back
    await waitFor(() => controller.nodeViews().find((n) => n.name === 'p-cam')?.upToDate === true, 'the node to catch up', 5000);
    // The restored content equals what it runs: it takes the new version number without a reload.
    assert.ok(a.current.version > v1);
    assert.equal(a.current.hash, first.hash);
    assert.equal(controller.node('p-cam')?.error, undefined);
  });
});
