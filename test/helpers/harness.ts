/**
 * Test harness: real servers on 127.0.0.1 port 0 — the demo model server as the accelerator,
 * ModelGuard compiled from resources exactly as `modelguard up` does — and a closed-loop load
 * generator on undici.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { compileResources } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/schema.ts';
import { Cancel } from '../../src/core/cancel.ts';
import type { InferenceCall } from '../../src/core/request.ts';
import type { Snapshot } from '../../src/core/snapshot.ts';
import { startGateway, type Gateway } from '../../src/compose/gateway.ts';
import { startModelServer, type ModelServer, type ModelServerOptions } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';

const API = 'modelguard.io/v1alpha1';
export const INFER_BODY = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });

/** A KServe v2 infer call of model `demo` as an adapter hands it to a DataPlane (INFER_BODY, no deadline). */
export function inferCall(id: string, signal: Cancel = new Cancel()): InferenceCall {
  return {
    id,
    protocol: 'http',
    api: 'kserve-v2',
    op: 'infer',
    model: 'demo',
    method: 'POST',
    path: '/v2/models/demo/infer',
    headers: { 'content-type': 'application/json', 'x-request-id': id },
    body: Buffer.from(INFER_BODY),
    timeoutMs: undefined,
    signal,
    receivedAt: performance.now(),
    costHint: undefined,
    permission: 'infer',
  };
}

export function accelerator(opts: ModelServerOptions): Promise<ModelServer> {
  return startModelServer({ mode: 'simulated', ...opts });
}

export interface GroupDef {
  name: string;
  priority?: number;
  weight?: number;
  reservedSlots?: number;
  maxLength?: number;
  maxWait?: string;
  /** ServiceGroup.spec.queue.earlyRefusal (default on). */
  earlyRefusal?: boolean;
}

export interface SetupDef {
  endpoints: { url: string; slots: number }[];
  models?: string[];
  groups: GroupDef[];
  /** One app per group, named `app-<group>`, key `key-<group>`. */
  backend?: Record<string, unknown>;
  gateway?: Record<string, unknown>;
  extra?: ResourceInput[];
}

export function keyFor(group: string): string {
  return `key-${group}`;
}

export function snapshotFor(def: SetupDef, version = 1): Snapshot {
  return compileResources(resourcesFor(def), { version }).snapshot;
}

export function resourcesFor(def: SetupDef): ResourceInput[] {
  return [
    { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: { auth: 'apiKey', ...def.gateway } },
    {
      apiVersion: API,
      kind: 'Backend',
      metadata: { name: 'accel' },
      spec: { protocol: 'kserve-v2-http', endpoints: def.endpoints, timeout: '10s', healthCheck: { interval: '200ms', timeout: '150ms' }, ...def.backend },
    },
    ...(def.models ?? ['demo']).map((m): ResourceInput => ({ apiVersion: API, kind: 'Model', metadata: { name: m }, spec: { backend: 'accel' } })),
    ...def.groups.map(
      (g): ResourceInput => ({
        apiVersion: API,
        kind: 'ServiceGroup',
        metadata: { name: g.name },
        spec: { priority: g.priority ?? 0, weight: g.weight ?? 1, reservedSlots: g.reservedSlots ?? 0, queue: { maxLength: g.maxLength ?? 10_000, maxWait: g.maxWait ?? '30s', ...(g.earlyRefusal === undefined ? {} : { earlyRefusal: g.earlyRefusal }) } },
      }),
    ),
    ...def.groups.map(
      (g): ResourceInput => ({
        apiVersion: API,
        kind: 'App',
        metadata: { name: `app-${g.name}` },
        spec: { serviceGroup: g.name, apiKeys: [{ sha256: sha256Hex(keyFor(g.name)) }] },
      }),
    ),
    ...(def.extra ?? []),
  ];
}

export async function gateway(def: SetupDef): Promise<Gateway> {
  return startGateway(snapshotFor(def), { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
}

export interface Answer {
  status: number;
  code: string | undefined;
  retryAfter: string | undefined;
  ms: number;
  /** performance.now() when the answer completed. */
  at: number;
  body: string;
}

export async function send(pool: Pool, path: string, opts: { key?: string; body?: string; headers?: Record<string, string>; method?: string; signal?: AbortSignal } = {}): Promise<Answer> {
  const t0 = performance.now();
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  if (opts.key) headers['authorization'] = `Bearer ${opts.key}`;
  const res = await pool.request({
    method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
    path,
    headers,
    body: opts.body ?? null,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const body = await res.body.text();
  const h = (n: string): string | undefined => {
    const v = res.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  const now = performance.now();
  return { status: res.statusCode, code: h('x-modelguard-error'), retryAfter: h('retry-after'), ms: now - t0, at: now, body };
}

/** Keeps `concurrency` requests outstanding until `stop()` resolves; returns every answer. */
export async function closedLoop(pool: Pool, path: string, opts: { key?: string; body?: string; concurrency: number; until: Promise<unknown> }): Promise<Answer[]> {
  let running = true;
  void opts.until.then(() => (running = false));
  const answers: Answer[] = [];
  const worker = async (): Promise<void> => {
    while (running) {
      answers.push(await send(pool, path, { ...(opts.key ? { key: opts.key } : {}), body: opts.body ?? INFER_BODY }));
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return answers;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

export function pool(url: string, connections = 64): Pool {
  return new Pool(url, { connections, pipelining: 1 });
}

const ROOT = new URL('../../', import.meta.url).pathname;

/** The demo model server in its own process (`modelguard demo-model`), for latency-sensitive tests. */
export async function acceleratorProcess(args: string[]): Promise<{ url: string; close: () => Promise<void> }> {
  const child = spawn(process.execPath, ['bin/modelguard.js', 'demo-model', '--listen', '127.0.0.1:0', '--mode', 'simulated', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`demo-model exited ${code}: ${out}`)));
  });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Open-loop load from another process; resolves with its summary when done. */
export async function loadProcess(url: string, path: string, key: string, ratePerSecond: number, durationMs: number): Promise<{ sent: number; byStatus: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'test/helpers/load-child.ts', url, path, key, String(ratePerSecond), String(durationMs)], { cwd: ROOT }, (err, stdout) => {
      if (err) reject(new Error(`load process failed: ${err.message}`));
      else resolve(JSON.parse(stdout) as { sent: number; byStatus: Record<string, number> });
    });
  });
}

/** Polls until `cond` holds (every 5 ms), failing after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/**
 * ModelGuard in its own process (`modelguard up --config`), for measurements where it must not
 * share an event loop with the load generator. The resources are written as JSON documents (JSON
 * is YAML).
 */
export async function gatewayProcess(def: SetupDef): Promise<{ httpUrl: string; adminUrl: string; close: () => Promise<void> }> {
  const file = join(mkdtempSync(join(tmpdir(), 'mg-gw-')), 'config.yaml');
  writeFileSync(file, resourcesFor(def).map((r) => JSON.stringify(r)).join('\n---\n'));
  const child = spawn(process.execPath, ['bin/modelguard.js', 'up', '--config', file, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const urls = await new Promise<{ httpUrl: string; adminUrl: string }>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const h = /inference HTTP +(http:\/\/\S+)/.exec(out);
      const a = /admin +(http:\/\/\S+)/.exec(out);
      if (h && a) resolve({ httpUrl: h[1]!, adminUrl: a[1]! });
    });
    child.once('exit', (code) => reject(new Error(`modelguard up exited ${code}: ${out}`)));
  });
  return {
    ...urls,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
