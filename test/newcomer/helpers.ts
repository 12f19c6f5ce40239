/**
 * Helpers for the newcomer tests: the `modelguard` command as a user runs it, and a private network
 * namespace in which the default ports (8080, 8010, 9460–9463, 8000, 1883) are free whatever else
 * runs on the machine, so the tests use the real defaults and no test elsewhere can collide.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(ROOT, 'bin/modelguard.js');

/** True inside the private namespace (the test file re-ran itself there). */
export const IN_NETNS = process.env['MG_NETNS'] === '1';

/**
 * Outside: one test that runs this file again with `unshare -rn` (a user and network namespace:
 * only a loopback, which is brought up) and passes when every test inside passes.
 */
export function rerunInNetns(fileUrl: string, timeoutMs: number): void {
  test(`runs in a private network namespace, on the default ports (${fileURLToPath(fileUrl).slice(ROOT.length)})`, { timeout: timeoutMs }, async () => {
    const file = fileURLToPath(fileUrl);
    // A fresh test run, not a subtest of this one (node:test refuses to nest runs).
    const env: NodeJS.ProcessEnv = { ...process.env, MG_NETNS: '1' };
    delete env['NODE_TEST_CONTEXT'];
    const child = spawn('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, '--import', 'tsx', '--test', '--test-reporter=spec', file], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, `the tests inside the namespace failed:\n${out}`);
    assert.match(out, /ℹ pass [1-9]/, out);
    assert.match(out, /ℹ fail 0/, out);
  });
}

export interface Proc {
  readonly child: ChildProcessWithoutNullStreams;
  out(): string;
  err(): string;
  /** Resolves when stdout matches; rejects with the output when the process exits first. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<number | null>;
}

/** Starts a long-running command (`modelguard up`, a role, the demo model server). */
export function start(cmd: string, args: readonly string[], env: Record<string, string> = {}, cwd = ROOT): Proc {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return {
    child,
    out: () => out,
    err: () => err,
    waitFor(re, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(out);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${cmd} ${args.join(' ')}: no ${re} within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        waiters.add(check);
        void exited.then((c) => {
          if (!waiters.has(check)) return;
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`${cmd} ${args.join(' ')} exited ${c} before ${re}\nstdout:\n${out}\nstderr:\n${err}`));
        });
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export function modelguard(args: readonly string[], env: Record<string, string> = {}, cwd = ROOT): Proc {
  return start(process.execPath, [BIN, ...args], env, cwd);
}

/** Runs a command to its end. */
export function run(cmd: string, args: readonly string[], env: Record<string, string> = {}, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export const mg = (args: readonly string[], env: Record<string, string> = {}, cwd = ROOT): ReturnType<typeof run> => run(process.execPath, [BIN, ...args], env, cwd);

/** GET until it answers `status` (a role's /readyz), or fail after `timeoutMs`. */
export async function until200(url: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = String(res.status);
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}
