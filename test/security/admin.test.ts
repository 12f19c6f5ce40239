// The admin API behind a token: probes and the dashboard page stay open, data needs the token.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { accelerator, gateway } from '../helpers/harness.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

test('with adminTokens, /metrics and /api/* need the token (header or ?token=); /healthz, /readyz and the page do not', { timeout: 30_000 }, async () => {
  const acc = await accelerator({ slots: 1 });
  closers.push(() => acc.close());
  const token = 'admin-secret-token';
  const gw = await gateway({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }], gateway: { adminTokens: [{ sha256: createHash('sha256').update(token).digest('hex') }] } });
  closers.push(() => gw.close());
  const get = async (path: string, headers: Record<string, string> = {}): Promise<number> => {
    const r = await fetch(`${gw.adminUrl}${path}`, { headers });
    await r.arrayBuffer();
    return r.status;
  };
  for (const path of ['/metrics', '/api/v1/status', '/api/v1/live']) {
    assert.equal(await get(path), 401, path);
    assert.equal(await get(path, { authorization: 'Bearer wrong' }), 401, path);
    assert.equal(await get(path, { authorization: `Bearer ${token}` }), 200, path);
  }
  assert.equal(await get(`/api/v1/live?token=${token}`), 200);
  assert.equal(await get('/healthz'), 200);
  assert.equal(await get('/readyz'), 200);
  assert.equal(await get('/'), 200, 'the page itself holds no data');

  const ROOT = new URL('../../', import.meta.url).pathname;
  const status = (args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, ['bin/modelguard.js', 'status', '--admin', gw.adminUrl, ...args], { cwd: ROOT, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
        resolve({ code: err ? 1 : 0, out: stdout + stderr });
      });
    });
  const denied = await status([]);
  assert.equal(denied.code, 1);
  assert.match(denied.out, /needs a token: pass --token or set MODELGUARD_ADMIN_TOKEN/);
  assert.equal((await status(['--token', token])).code, 0);
  assert.equal((await status([], { MODELGUARD_ADMIN_TOKEN: token })).code, 0);
});
