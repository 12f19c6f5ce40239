/**
 * Isolation test parts, each a real process on loopback: the model server (model-server.ts),
 * ModelGuard (`modelguard up --config`), and open-loop load at a fixed rate from the test process.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'undici';
import { resourcesFor, type SetupDef } from '../helpers/harness.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface Child {
  readonly url: string;
  close(): Promise<void>;
  /** SIGKILL: the process dies mid-work, its connections reset. */
  kill(): Promise<void>;
}

function spawnChild(args: string[], pattern: RegExp): Promise<{ urls: string[]; close: () => Promise<void>; kill: () => Promise<void> }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (!m) return;
      const stop = (signal: NodeJS.Signals) => (): Promise<void> =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once('exit', () => done());
          child.kill(signal);
        });
      resolve({ urls: m.slice(1), close: stop('SIGTERM'), kill: stop('SIGKILL') });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${out}`)));
  });
}

/** The isolation model server (models `demo` and `broken`) with `slots` slots of `serviceMs` each. */
export async function modelServer(slots: number, serviceMs: number): Promise<Child> {
  const c = await spawnChild(['--import', 'tsx', 'test/isolation/model-server.ts', String(slots), String(serviceMs)], /listening on (http:\/\/\S+)/);
  return { url: c.urls[0] as string, close: c.close, kill: c.kill };
}

export interface ModelStats {
  peak: number;
  outstanding: number;
  served: number;
  finishedForGoneClients: number;
  brokenCalls: number;
  slots: number;
}

export async function modelStats(url: string, reset = false): Promise<ModelStats> {
  const res = await fetch(`${url}/${reset ? '_reset' : '_stats'}`);
  return (await res.json()) as ModelStats;
}

/** ModelGuard as `modelguard up --config` in its own process. */
export async function guard(def: SetupDef): Promise<{ httpUrl: string; grpcUrl: string; adminUrl: string; close: () => Promise<void> }> {
  const file = join(mkdtempSync(join(tmpdir(), 'mg-iso-')), 'config.yaml');
  writeFileSync(file, resourcesFor(def).map((r) => JSON.stringify(r)).join('\n---\n'));
  const c = await spawnChild(
    ['bin/modelguard.js', 'up', '--config', file, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
    /inference HTTP +(http:\/\/\S+)[\s\S]*inference gRPC +(\S+)[\s\S]*admin +(http:\/\/\S+)/,
  );
  const [httpUrl, grpcUrl, adminUrl] = c.urls as [string, string, string];
  return { httpUrl, grpcUrl: grpcUrl.replace(/^\w+:\/\//, ''), adminUrl, close: c.close };
}

export interface Outcome {
  status: number;
  code: string | undefined;
  ms: number;
}

/** Calls `fn` `rate` times a second for `durationMs` (open loop); resolves with every outcome. */
export async function openLoop(rate: number, durationMs: number, fn: () => Promise<Outcome>): Promise<Outcome[]> {
  const pending: Promise<Outcome>[] = [];
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < durationMs) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate) + 1;
    while (sent < due) {
      sent++;
      pending.push(fn());
    }
    await new Promise((r) => setTimeout(r, Math.min(5, 1000 / rate / 2)));
  }
  return Promise.all(pending);
}

/** One HTTP call; a client-side abort after `hangUpMs` counts as status 0. */
export async function httpCall(pool: Pool, path: string, key: string, body: string, headers: Record<string, string> = {}, hangUpMs?: number): Promise<Outcome> {
  const t0 = performance.now();
  const ac = hangUpMs === undefined ? undefined : new AbortController();
  const timer = ac && setTimeout(() => ac.abort(), hangUpMs);
  try {
    const res = await pool.request({
      method: 'POST',
      path,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body,
      ...(ac ? { signal: ac.signal } : {}),
    });
    await res.body.dump();
    const code = res.headers['x-modelguard-error'];
    return { status: res.statusCode, code: Array.isArray(code) ? code[0] : code, ms: performance.now() - t0 };
  } catch {
    return { status: 0, code: 'client-abort', ms: performance.now() - t0 };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export function p(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((q / 100) * s.length) - 1)] ?? NaN;
}

/** `{ "200": 12, "503 MG_QUEUE_TIMEOUT": 3 }` */
export function tally(outcomes: Outcome[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const o of outcomes) {
    const k = o.code === undefined ? String(o.status) : `${o.status} ${o.code}`;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}

export interface NeighbourResult {
  tally: Record<string, number>;
  fastRefusals: number;
}

/** Runs the neighbour (neighbour.ts) in its own process; resolves with its outcome counts. */
/**
 * The misbehaving neighbour in its own process. `started` resolves once it is loaded and sending
 * (its start-up — a TypeScript compile and gRPC's modules — costs a core for most of a second on
 * this machine, which is the load generator's cost, not the flood's); `result` when it is done.
 */
export function neighbour(kind: 'flood' | 'bad' | 'broken' | 'hangup', mg: { httpUrl: string; grpcUrl: string }, key: string, rate: number, durationMs: number): { started: Promise<void>; result: Promise<NeighbourResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/isolation/neighbour.ts', kind, mg.httpUrl, mg.grpcUrl, key, String(rate), String(durationMs)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes('sending\n')) markStarted();
  });
  const result = new Promise<NeighbourResult>((resolve, reject) => {
    child.once('exit', (code) => {
      markStarted();
      if (code !== 0) reject(new Error(`neighbour ${kind} failed (exit ${code}):\n${stderr}`));
      else resolve(JSON.parse(stdout) as NeighbourResult);
    });
  });
  return { started, result };
}

export interface LoadResult {
  sent: number;
  /** Calls that got no HTTP answer at all. */
  errors: number;
  tally: Record<string, number>;
  /** 429 answers that carried Retry-After. */
  retryAfter: number;
  /** The longest time to an answer, per outcome, ms. */
  maxMs: Record<string, number>;
}

/** Open-loop load from its own process (load.ts). */
export function load(url: string, key: string, model: string, rate: number, durationMs: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'test/isolation/load.ts', url, key, model, String(rate), String(durationMs)], { cwd: ROOT }, (err, stdout, stderr) => {
      if (err) reject(new Error(`load failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as LoadResult);
    });
  });
}
