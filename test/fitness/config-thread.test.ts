/**
 * `up --config` and standalone nodes compile their files in a worker thread, or for a proxy in a
 * child process (src/cli/config-thread.ts), so the compiler never stays in the long-running process
 * (docs/build.md, "Footprint"). What either sends back must be what loadConfig gives in the process
 * itself: the same snapshot (hash and content), frozen, and a ConfigError with the same issues for a
 * bad file. Every test runs both ways.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { type Isolation, loadSnapshot, snapshotFiles } from '../../src/cli/config-thread.ts';
import type { Snapshot } from '../../src/core/snapshot.ts';
import { ConfigError } from '../../src/config/issues.ts';
import { loadConfig } from '../../src/config/load.ts';

const CONFIG = `apiVersion: modelguard.io/v1alpha1
kind: Gateway
metadata: { name: default }
spec: { auth: none }
---
apiVersion: modelguard.io/v1alpha1
kind: Backend
metadata: { name: accel }
spec:
  protocol: kserve-v2-http
  endpoints: [{ url: "http://127.0.0.1:9", slots: 3 }]
---
apiVersion: modelguard.io/v1alpha1
kind: Model
metadata: { name: demo }
spec: { backend: accel }
---
apiVersion: modelguard.io/v1alpha1
kind: ServiceGroup
metadata: { name: default }
spec: { queue: { maxLength: 7 } }
`;

/** Child processes forked while a describe ran (node:child_process's fork, counted in place). */
let forks = 0;
const realFork = childProcess.fork;
before(() => {
  childProcess.fork = ((...a: Parameters<typeof realFork>) => {
    forks++;
    return realFork(...a);
  }) as typeof realFork;
  syncBuiltinESMExports();
});
after(() => {
  childProcess.fork = realFork;
  syncBuiltinESMExports();
});

for (const isolation of ['thread', 'process'] as const satisfies readonly Isolation[]) describe(`the configuration compiled in a ${isolation === 'thread' ? 'worker thread' : 'child process'}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-config-thread-'));
  let forksBefore = 0;
  before(() => (forksBefore = forks));
  after(() => rmSync(dir, { recursive: true, force: true }));
  after(() => assert.equal(forks > forksBefore, isolation === 'process', `${isolation}: ${forks - forksBefore} child processes forked`));

  it('is the snapshot loadConfig compiles in-process: same hash, same content, frozen, the version asked for', async () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, CONFIG);
    const inProcess = (await loadConfig(good, { version: 4 })).snapshot;
    const fromOutside = await loadSnapshot(good, { version: 4, isolation });
    assert.equal(fromOutside.hash, inProcess.hash);
    assert.equal(fromOutside.version, 4);
    assert.deepEqual(fromOutside, inProcess);
    assert.ok(Object.isFrozen(fromOutside) && Object.isFrozen(fromOutside.gateway), 'deep-frozen, as a compiled snapshot is');
  });

  it('refuses a bad file with a ConfigError carrying the same issues, and a missing path as loadConfig does', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: modelguard.io/v1alpha1\nkind: Backend\nmetadata: { name: x }\nspec: { protocol: nope }\n');
    const expected = await loadConfig(bad).then(
      () => assert.fail('loadConfig accepted a bad file'),
      (e: unknown) => e as ConfigError,
    );
    await assert.rejects(loadSnapshot(bad, { isolation }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `a ConfigError (got ${String(err)})`);
      assert.deepEqual(err.issues, expected.issues);
      return true;
    });
    await assert.rejects(loadSnapshot(join(dir, 'missing'), { isolation }), (err: unknown) => err instanceof ConfigError && /no such file or directory/.test(err.message));
  });

  it('a standalone node\'s files: loaded, re-loaded when they change, a bad edit refused (the last good one stays the caller\'s), SIGHUP re-reads', async () => {
    const path = join(dir, 'watched.yaml');
    writeFileSync(path, CONFIG);
    const loads: Snapshot[] = [];
    const errors: unknown[] = [];
    const files = snapshotFiles(path, isolation);
    try {
      await files.start({ onLoad: (s) => loads.push(s), onError: (e) => errors.push(e) });
      assert.equal(loads.length, 1);
      assert.equal(loads[0]!.groups['default']?.queue.maxLength, 7);
      writeFileSync(path, CONFIG.replace('maxLength: 7', 'maxLength: 9'));
      await until(() => loads.length === 2, 'the change to be loaded');
      assert.equal(loads[1]!.groups['default']?.queue.maxLength, 9);
      writeFileSync(path, CONFIG.replace('protocol: kserve-v2-http', 'protocol: nope'));
      await until(() => errors.length === 1, 'the bad edit to be refused');
      assert.ok(errors[0] instanceof ConfigError, `a ConfigError (got ${String(errors[0])})`);
      assert.equal(loads.length, 2, 'nothing loaded from the bad edit');
      writeFileSync(path, CONFIG);
      await until(() => loads.length === 3, 'the repaired file to be loaded');
      await files.reload('SIGHUP');
      assert.equal(loads.length, 4);
      assert.equal(loads[3]!.hash, loads[0]!.hash);
    } finally {
      files.close();
    }
  });
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
