/** `modelguard top`: the frame it draws for a live view, and the command against a real gateway. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import { bar, renderTop, sparkline } from '../../src/cli/top.ts';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, gateway, INFER_BODY, keyFor, pool, send, waitFor } from '../helpers/harness.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const ANSI = /\x1b\[/;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/modelguard.js', ...args], { cwd: ROOT, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('modelguard top', () => {
  let acc: ModelServer;
  let gw: Gateway;
  let p: Pool;

  before(async () => {
    acc = await accelerator({ slots: 2, serviceTime: 2 });
    gw = await gateway({ endpoints: [{ url: acc.url, slots: 2 }], groups: [{ name: 'gold', weight: 3 }, { name: 'bronze' }] });
    p = pool(gw.httpUrl);
    for (let i = 0; i < 5; i++) await send(p, '/v2/models/demo/infer', { key: keyFor('gold'), body: INFER_BODY });
    await send(p, '/v2/models/demo/infer', { key: 'wrong', body: INFER_BODY });
    // One closed second, so rates are not all zero.
    const before = gw.live.view().groups[0]?.history.perSecond.length ?? 0;
    await waitFor(() => (gw.live.view().groups[0]?.history.perSecond.length ?? 0) > before, 'a second to close', 3000);
  });

  after(async () => {
    await p.close();
    await gw.close();
    await acc.close();
  });

  it('draws groups, endpoints, models, apps and errors, within the width', () => {
    const frame = renderTop(gw.live.view(), { width: 200, color: false });
    for (const text of ['ModelGuard top', 'gold', 'bronze', 'default', acc.url, 'demo', 'app-gold', 'MG_UNAUTHENTICATED', 'RECENT ERRORS']) assert.ok(frame.includes(text), text);
    assert.doesNotMatch(frame, ANSI);
    const narrow = renderTop(gw.live.view(), { width: 60, color: true });
    assert.match(narrow, ANSI);
    for (const line of narrow.split('\n')) assert.ok(line.replace(/\x1b\[[0-9;]*m/g, '').length <= 60, line);
  });

  it('draws bars and sparklines in eighths', () => {
    assert.equal(bar(0.5, 4), '██  ');
    assert.equal(bar(0.5, 1), '▌');
    assert.equal(bar(1 / 8, 1), '▏');
    assert.equal(sparkline([0, 1, 2, 4], 4), '▁▃▅█');
  });

  it('prints frames from the admin listener and exits after -n frames', async () => {
    const r = await run(['top', '--admin', gw.adminUrl, '-n', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('ModelGuard top').length - 1, 2);
    assert.match(r.stdout, /gold/);
    assert.doesNotMatch(r.stdout, ANSI, 'no colour without a terminal');
  });

  it('says what is wrong when nothing listens', async () => {
    const r = await run(['top', '--admin', 'http://127.0.0.1:9', '-n', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read http:\/\/127\.0\.0\.1:9\/api\/v1\/live/);
  });
});
