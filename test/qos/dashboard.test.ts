/**
 * The dashboard's QoS panel in a real browser (Debian's Chromium, as test/observability does): with
 * trafficQoS configured on an interface this machine does not have, QoS stays off, the gateway runs,
 * /metrics says so, and the panel appears and says QoS is configured but not installed.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { compileResources } from '../../src/config/index.ts';
import { startGateway, type Gateway } from '../../src/compose/gateway.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../observability/helpers.ts';

const API = 'modelguard.io/v1alpha1';

describe('dashboard: uplink traffic QoS panel', () => {
  let gw: Gateway | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  const lines: string[] = [];
  after(async () => {
    await context?.close();
    await gw?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('appears when trafficQoS is configured and tells why it is not installed', { timeout: 60_000 }, async () => {
    const snapshot = compileResources(
      [
        { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: { auth: 'none', trafficQoS: { interface: 'mgqnosuch0', uplinkRate: '10Mbit' } } },
        { apiVersion: API, kind: 'Backend', metadata: { name: 'cloud' }, spec: { endpoints: [{ url: 'http://192.0.2.1:8000' }] } },
      ],
      { version: 1 },
    ).snapshot;
    gw = await startGateway(snapshot, { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', qosLog: (l) => void lines.push(l) });
    assert.equal(gw.qos.status().state, 'inactive');
    assert.match(lines.join('\n'), /traffic QoS is off: cannot read the qdiscs of mgqnosuch0/);
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    assert.match(metrics, /modelguard_qos_active\{interface="mgqnosuch0"\} 0/);

    profile = await mkdtemp(join(tmpdir(), 'mg-chromium-qos-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${gw.adminUrl}/`);
    const panel = page.locator('#qos');
    await panel.waitFor({ timeout: 15_000 });
    assert.match((await panel.textContent()) ?? '', /mgqnosuch0: traffic QoS is configured but not installed/);
    assert.equal(await page.locator('h2', { hasText: 'Uplink traffic QoS' }).count(), 1);
  });
});
