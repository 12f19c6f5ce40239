/**
 * The controller's page in Debian's Chromium: it shows the configuration version and each node with
 * the version it runs, and follows changes without a reload (a node joining, a new configuration).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { closeServer, listen } from '../../src/net/listen.ts';
import { NodeAgent } from '../../src/controller/agent.ts';
import { Controller } from '../../src/controller/controller.ts';
import { createControllerServer } from '../../src/controller/server.ts';
import { FileSource } from '../../src/controller/source.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { CHROMIUM, CHROMIUM_ARGS, until } from '../observability/helpers.ts';

const API = 'modelguard.io/v1alpha1';
const ADMIN = 'admin-page-token';

function config(weight: number): string {
  return [
    { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: { adminTokens: [{ sha256: sha256Hex(ADMIN) }] } },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'b' }, spec: { endpoints: [{ url: 'http://127.0.0.1:1' }] } },
    { apiVersion: API, kind: 'Model', metadata: { name: 'm' }, spec: { backend: 'b' } },
    { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'g' }, spec: { weight } },
    { apiVersion: API, kind: 'App', metadata: { name: 'cam' }, spec: { serviceGroup: 'g', apiKeys: [{ sha256: sha256Hex('k') }] } },
  ]
    .map((d) => JSON.stringify(d))
    .join('\n---\n');
}

describe('controller page in Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-ctl-page-'));
  let controller: Controller;
  let server: ReturnType<typeof createControllerServer>;
  let url: string;
  const agents: NodeAgent[] = [];
  let context: BrowserContext | undefined;
  let profile: string | undefined;

  before(async () => {
    writeFileSync(join(dir, 'r.yaml'), config(1));
    controller = new Controller(new FileSource(dir), { heartbeatMs: 300, log: () => undefined });
    await controller.start();
    server = createControllerServer(controller);
    url = await listen(server, '127.0.0.1:0');
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await Promise.all(agents.map((a) => a.close()));
    controller.close();
    await closeServer(server);
    rmSync(dir, { recursive: true, force: true });
  });

  const agent = async (name: string, role: 'broker' | 'proxy', apps: string[] = []): Promise<void> => {
    const a = new NodeAgent({ controller: url, name, role, apps, waitMs: 2000, log: () => undefined }, () => undefined);
    agents.push(a);
    await a.first();
    a.run();
  };

  it('lists nodes and their versions, live', async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is not installed at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    await agent('edge-1', 'broker');
    profile = mkdtempSync(join(tmpdir(), 'mg-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${url}/?token=${ADMIN}`);
    await page.locator('tr[data-node="edge-1"]').waitFor({ timeout: 10_000 });
    assert.equal((await page.locator('#config-version').textContent())?.trim(), 'v1');
    assert.match((await page.locator('tr[data-node="edge-1"]').textContent()) ?? '', /broker.*v1.*current/);

    // A node joins and the configuration changes: the page follows without a reload.
    await agent('cam-proxy', 'proxy', ['cam']);
    await page.locator('tr[data-node="cam-proxy"]').waitFor({ timeout: 10_000 });
    writeFileSync(join(dir, 'r.yaml'), config(3));
    await until(async () => ((await page.locator('#config-version').textContent()) ?? '').trim() === 'v2', 'the page to show v2');
    await until(async () => /v2.*current/.test((await page.locator('tr[data-node="cam-proxy"]').textContent()) ?? ''), 'the proxy row at v2');
    assert.ok(Number(await page.locator('body').getAttribute('data-updates')) >= 2);
    assert.deepEqual(problems, []);
  });

  it('serves the page without a token, but its data only with one', async () => {
    assert.equal((await fetch(`${url}/`)).status, 200);
    assert.equal((await fetch(`${url}/api/v1/nodes`)).status, 401);
    assert.equal((await fetch(`${url}/api/v1/nodes`, { headers: { authorization: `Bearer ${ADMIN}` } })).status, 200);
  });
});
