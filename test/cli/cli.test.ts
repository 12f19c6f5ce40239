// The command line as an operator uses it: spawned as a real process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/modelguard.js');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('validate: invalid configuration → file:line errors with a hint, exit 1, no stack trace', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-cli-'));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, ['kind: ServiceGroup', 'metadata: { name: gold }', 'spec:', '  weight: 3', '  maxQueue: 10', '---', 'kind: Model', 'metadata: { name: m }', 'spec: { backend: nowhere }', ''].join('\n'));
  const r = await run(['validate', '--config', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: .*maxQueue.*hint: .*queue\\.maxLength`));
  assert.match(r.stderr, /bad\.yaml:9:\d+: .*nowhere/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('validate: a good configuration → ok summary, exit 0', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-cli-'));
  writeFileSync(join(dir, 'a.yaml'), ['kind: Backend', 'metadata: { name: b }', 'spec:', '  endpoints: [{ url: "http://127.0.0.1:8000", slots: 2 }]', '---', 'kind: Model', 'metadata: { name: m }', 'spec: { backend: b }', ''].join('\n'));
  const r = await run(['validate', '--config', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ok: 2 resources in 1 file\(s\); 1 groups, 1 backends, 1 models/);
});

test('keys create: prints a key once and the App snippet with its sha256', { timeout: 30_000 }, async () => {
  const r = await run(['keys', 'create', '--app', 'cam-1', '--group', 'gold']);
  assert.equal(r.code, 0);
  const key = /key \(shown once, store it now\): (\S+)/.exec(r.stderr)?.[1];
  assert.ok(key && key.length > 40);
  const hash = createHash('sha256').update(key).digest('hex');
  assert.ok(r.stdout.includes(`sha256: "${hash}"`));
  assert.match(r.stdout, /serviceGroup: gold/);
});

test('up with no arguments: the embedded demo serves a real model, and its printed curl command works', { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, [BIN, 'up', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/curl -s .*\n/.test(out)) resolve();
      });
      child.once('exit', (c) => reject(new Error(`up exited ${c}`)));
    });
    const curl = /(curl -s .*)\n/.exec(out)![1]!;
    const key = /Bearer (\S+)'/.exec(curl)![1]!;
    const url = /(http:\/\/\S+\/v2\/models\/iris\/infer)/.exec(curl)![1]!;
    const body = /-d '([^']+)'/.exec(curl)![1]!;
    assert.match(out, /camera-line-1 +group gold/);
    assert.match(out, /batch-analytics +group bronze/);
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { outputs: { name: string; data: number[] }[] };
    // The demo row is a setosa flower: class 0.
    assert.equal(doc.outputs.find((o) => o.name === 'label')?.data[0], 0);
    const admin = /admin +(http:\/\/\S+)/.exec(out)![1]!;
    const status = await run(['status', '--admin', admin]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /gold +0 +3/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  assert.equal(child.exitCode, 0, 'clean shutdown on SIGTERM');
});

test('status without a running ModelGuard: a clear message, exit 1', { timeout: 30_000 }, async () => {
  const r = await run(['status', '--admin', 'http://127.0.0.1:9']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach the admin listener/);
});

test('up --config reloads on file change and on SIGHUP; an invalid change is refused and the last good configuration stays', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-reload-'));
  const file = join(dir, 'config.yaml');
  const base = [
    'kind: Gateway',
    'metadata: { name: g }',
    'spec: { auth: none }',
    '---',
    'kind: Backend',
    'metadata: { name: b }',
    'spec: { endpoints: [{ url: "http://127.0.0.1:9", slots: 1 }], healthCheck: { interval: 1s } }',
    '---',
    'kind: Model',
    'metadata: { name: m }',
    'spec: { backend: b }',
    '',
  ].join('\n');
  writeFileSync(file, base);
  const child = spawn(process.execPath, [BIN, 'up', '--config', file, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(cond(), `${what}\nstdout: ${out}\nstderr: ${err}`);
  };
  try {
    await until(() => /admin +http/.test(out), 'started');
    const admin = /admin +(http:\/\/\S+)/.exec(out)![1]!;
    const groups = async (): Promise<string[]> => ((await (await fetch(`${admin}/api/v1/status`)).json()) as { groups: { name: string }[] }).groups.map((g) => g.name);
    assert.deepEqual(await groups(), ['default']);
    writeFileSync(file, `${base}---\nkind: ServiceGroup\nmetadata: { name: gold }\nspec: { weight: 3 }\n`);
    await until(() => /configuration reloaded \(file change\): version 2/.test(out), 'reloaded on file change');
    assert.deepEqual((await groups()).sort(), ['default', 'gold']);
    writeFileSync(file, `${base}---\nkind: ServiceGroup\nmetadata: { name: gold }\nspec: { weigth: 3 }\n`);
    await until(() => /configuration not reloaded \(file change\); keeping version 2/.test(err), 'refused the bad change');
    assert.match(err, /config\.yaml:15:\d+: .*weigth.*hint: .*weight/);
    assert.deepEqual((await groups()).sort(), ['default', 'gold'], 'the last good configuration stays');
    writeFileSync(file, `${base}---\nkind: ServiceGroup\nmetadata: { name: silver }\n`);
    child.kill('SIGHUP');
    await until(() => /configuration reloaded \((SIGHUP|file change)\): version 3/.test(out), 'reloaded again');
    assert.deepEqual((await groups()).sort(), ['default', 'silver']);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
