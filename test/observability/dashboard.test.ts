/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core): it loads, shows the
 * configured groups, and its numbers move while load runs. The screenshot becomes docs/dashboard.png.
 * Without Chromium this test fails (CI installs it): a dashboard nobody opened is not tested.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Pool } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, closedLoop, delay, gateway, keyFor, pool } from '../helpers/harness.ts';
import { CHROMIUM, CHROMIUM_ARGS, paced, until } from './helpers.ts';

const SCREENSHOT = fileURLToPath(new URL('../../docs/dashboard.png', import.meta.url));
const API = 'modelguard.io/v1alpha1';
const BATCH_KEY = 'key-batch-analytics';

describe('dashboard in Chromium', () => {
  const accs: ModelServer[] = [];
  let gw: Gateway;
  let p: Pool;
  let context: BrowserContext | undefined;
  let profile: string | undefined;

  before(async () => {
    for (let i = 0; i < 2; i++) accs.push(await accelerator({ slots: 2, models: [{ name: 'detector', serviceTime: 20 }, { name: 'classifier', serviceTime: 5 }] }));
    gw = await gateway({
      endpoints: accs.map((a) => ({ url: a.url, slots: 2 })),
      models: ['detector'],
      groups: [
        { name: 'safety', priority: 10, maxLength: 50 },
        { name: 'gold', weight: 3, maxLength: 200 },
        { name: 'bronze', weight: 1, maxLength: 200 },
      ],
      extra: [
        { apiVersion: API, kind: 'App', metadata: { name: 'batch-analytics' }, spec: { serviceGroup: 'bronze', apiKeys: [{ sha256: sha256Hex(BATCH_KEY) }], rateLimit: { requestsPerSecond: 20 } } },
        { apiVersion: API, kind: 'Model', metadata: { name: 'face-id' }, spec: { backend: 'accel', visibility: 'private' } },
        // Batched across apps: the models table shows its batch size.
        { apiVersion: API, kind: 'Model', metadata: { name: 'classifier' }, spec: { backend: 'accel', batching: { maxBatchSize: 8, maxDelay: '2ms' } } },
        // A cloud link for the offload panel: failover only, so the load here stays on the edge.
        { apiVersion: API, kind: 'Backend', metadata: { name: 'cloud' }, spec: { endpoints: [{ url: accs[1]!.url, slots: 1 }] } },
        { apiVersion: API, kind: 'Model', metadata: { name: 'detector-xl' }, spec: { backend: 'accel', backendModel: 'detector', offload: { backend: 'cloud', when: 'failover', backendModel: 'detector' } } },
      ],
    });
    p = pool(gw.httpUrl);
  });

  after(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await p.close();
    await gw.close();
    for (const a of accs) await a.close();
  });

  const text = async (page: Page, selector: string): Promise<string> => ((await page.locator(selector).first().textContent()) ?? '').trim();
  const updates = async (page: Page): Promise<number> => Number(await page.locator('body').getAttribute('data-updates'));

  it('loads, shows the configured groups, and follows the load live', async () => {
    if (!existsSync(CHROMIUM)) {
      assert.fail(`Chromium is not installed at ${CHROMIUM}: the dashboard test needs it. Install it with: apt-get update && apt-get install -y chromium (or set CHROMIUM_PATH)`);
    }
    profile = await mkdtemp(join(tmpdir(), 'mg-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1440, height: 1000 } });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });

    await page.goto(`${gw.adminUrl}/`);
    await page.locator('#groups article[data-group="gold"]').waitFor({ timeout: 15_000 });
    const cards = page.locator('#groups article[data-group]');
    const shown: string[] = [];
    for (let i = 0; i < (await cards.count()); i++) shown.push((await cards.nth(i).getAttribute('data-group')) ?? '');
    assert.deepEqual(shown.sort(), Object.keys(gw.broker.current.groups).sort(), 'one card per configured group');
    assert.equal(await text(page, '#config-version'), `v${gw.broker.current.version}`);
    const offloadRow = page.locator('#offload tr[data-offload="detector-xl"]');
    await offloadRow.waitFor({ timeout: 5000 });
    assert.match((await offloadRow.textContent()) ?? '', /cloud · failover.*closed/);
    assert.equal(await text(page, '[data-group="gold"] [data-field="dispatched"]'), '0');
    const endpointRows = await page.locator('#endpoints tr[data-endpoint]').count();
    assert.equal(endpointRows, accs.length + 1, 'one row per endpoint, the cloud link included');

    // Load: two groups overloading the accelerator, a light high-priority group, an app over its
    // rate limit, a wrong key and a private model the app was not granted.
    const stop = delay(14_000);
    const load = Promise.all([
      closedLoop(p, '/v2/models/detector/infer', { key: keyFor('gold'), concurrency: 6, until: stop }),
      closedLoop(p, '/v2/models/classifier/infer', { key: keyFor('bronze'), concurrency: 6, until: stop }),
      paced(p, '/v2/models/detector/infer', { key: keyFor('safety'), everyMs: 100, until: stop }),
      paced(p, '/v2/models/classifier/infer', { key: BATCH_KEY, everyMs: 25, until: stop }),
      paced(p, '/v2/models/classifier/infer', { key: 'not-a-key', everyMs: 700, until: stop }),
      paced(p, '/v2/models/face-id/infer', { key: keyFor('bronze'), everyMs: 900, until: stop }),
    ]);
    try {
      const before = await updates(page);
      await until(async () => Number((await text(page, '[data-group="gold"] [data-field="perSecond"]')).replace(/[^\d.]/g, '')) > 0, 'gold throughput on the page');
      const dispatched1 = await text(page, '[data-group="gold"] [data-field="dispatched"]');
      await until(async () => (await text(page, '[data-group="gold"] [data-field="dispatched"]')) !== dispatched1, 'dispatched count to change');
      await until(async () => (await updates(page)) >= before + 3, 'three more live updates');
      await until(async () => (await page.locator('#errors tbody tr').count()) > 0, 'recent errors listed');
      assert.match(await text(page, '[data-app="batch-analytics"]'), /RATE_LIMITED/);
      assert.notEqual(await text(page, '[data-group="gold"] [data-field="usedShare"]'), '–');
      await until(async () => /^\d+(\.\d+)?\/8$/.test(await text(page, '#models tr[data-model="classifier"] [data-field="batch"]')), 'the batch size of the batching model');
      assert.equal(await text(page, '#models tr[data-model="detector"] [data-field="batch"]'), '–');
      // Let a few more seconds of history fill the charts before the picture.
      await delay(7000);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    } finally {
      await load;
    }
    assert.ok(existsSync(SCREENSHOT));
    assert.deepEqual(problems, [], 'no script errors or CSP violations in the page');
  });
});
