/**
 * The dashboard's first paint shows the current state: the page carries the live view, so with the
 * event stream blocked it still draws the groups, the configuration version and the clock, not
 * empty frames and "connecting…". A page without the admin token carries no data.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, gateway } from '../helpers/harness.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../observability/helpers.ts';

describe('dashboard first paint', () => {
  let acc: ModelServer;
  let gw: Gateway;
  let locked: Gateway;
  let context: BrowserContext | undefined;
  let profile: string | undefined;

  before(async () => {
    acc = await accelerator({ slots: 2 });
    const def = { endpoints: [{ url: acc.url, slots: 2 }], groups: [{ name: 'gold', weight: 3 }, { name: 'bronze', weight: 1 }] };
    gw = await gateway(def);
    locked = await gateway({ ...def, gateway: { adminTokens: [{ sha256: sha256Hex('admin-secret') }] } });
  });

  after(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await gw.close();
    await locked.close();
    await acc.close();
  });

  it('draws the current state with the event stream blocked', { timeout: 60_000 }, async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is not installed at ${CHROMIUM}; apt-get install -y chromium (or set CHROMIUM_PATH)`);
    profile = await mkdtemp(join(tmpdir(), 'mg-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    // No live updates at all: what shows comes from the page itself.
    await page.route('**/api/v1/events*', (route) => route.abort());
    await page.route('**/api/v1/live*', (route) => route.abort());
    await page.goto(`${gw.adminUrl}/`, { waitUntil: 'load' });
    await page.locator('#groups article[data-group="gold"]').waitFor({ timeout: 10_000 });
    assert.equal(((await page.locator('#config-version').textContent()) ?? '').trim(), `v${gw.broker.current.version}`);
    const shown = await page.locator('#groups article[data-group]').evaluateAll((els) => els.map((e) => e.getAttribute('data-group')).sort());
    assert.deepEqual(shown, ['bronze', 'default', 'gold']);
    assert.doesNotMatch((await page.locator('#live-text').textContent()) ?? '', /connecting/);
    assert.deepEqual(problems, []);
  });

  it('embeds no data in a page served without the admin token', async () => {
    const bare = await (await fetch(`${locked.adminUrl}/`)).text();
    assert.doesNotMatch(bare, /id="initial-view"/);
    const withToken = await (await fetch(`${locked.adminUrl}/?token=admin-secret`)).text();
    assert.match(withToken, /<script type="application\/json" id="initial-view">\{"/);
  });
});
