/**
 * Offload test set-up: an edge Backend and a "cloud" Backend, both demo model servers on loopback
 * whose latency, faults and received requests the test controls, and a gateway compiled from
 * resources as `modelguard up` does. One app per test (key `key-app`) in group `g`.
 */
import { execFile } from 'node:child_process';
import { Pool } from 'undici';
import { compileResources } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/schema.ts';
import { startGateway, type Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { delay } from '../helpers/harness.ts';

const API = 'modelguard.io/v1alpha1';
export const KEY = 'key-app';

export interface ModelDef {
  name: string;
  visibility?: 'public' | 'private';
  backendModel?: string;
  offload?: Record<string, unknown>;
}

export interface OffloadDef {
  edge: { url: string; slots: number }[];
  cloud: { url: string; slots: number }[];
  models: ModelDef[];
  queue?: { maxLength?: number; maxWait?: string };
  cloudSpec?: Record<string, unknown>;
}

export function offloadResources(def: OffloadDef): ResourceInput[] {
  const health = { interval: '100ms', timeout: '80ms' };
  return [
    { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: { auth: 'apiKey' } },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'edge' }, spec: { endpoints: def.edge, timeout: '10s', healthCheck: health } },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'cloud' }, spec: { endpoints: def.cloud, timeout: '10s', healthCheck: health, ...def.cloudSpec } },
    ...def.models.map(
      (m): ResourceInput => ({
        apiVersion: API,
        kind: 'Model',
        metadata: { name: m.name },
        spec: {
          backend: 'edge',
          visibility: m.visibility ?? 'public',
          ...(m.backendModel ? { backendModel: m.backendModel } : {}),
          ...(m.offload ? { offload: { backend: 'cloud', ...m.offload } } : {}),
        },
      }),
    ),
    { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'g' }, spec: { queue: { maxLength: def.queue?.maxLength ?? 1000, maxWait: def.queue?.maxWait ?? '5s' } } },
    {
      apiVersion: API,
      kind: 'App',
      metadata: { name: 'app' },
      spec: { serviceGroup: 'g', apiKeys: [{ sha256: sha256Hex(KEY) }], models: def.models.filter((m) => m.visibility === 'private').map((m) => m.name) },
    },
  ];
}

export async function offloadGateway(def: OffloadDef): Promise<Gateway> {
  const { snapshot } = compileResources(offloadResources(def), { version: 1 });
  return startGateway(snapshot, { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
}

export interface EdgeAndCloud {
  readonly edge: ModelServer;
  readonly cloud: ModelServer;
  readonly gw: Gateway;
  readonly pool: Pool;
  /** Closes the client pool, the gateway and both model servers. */
  close(): Promise<void>;
}

/** ModelGuard between an edge and a cloud model server (one endpoint each), and a client pool. */
export async function edgeAndCloud(
  edge: { server: ModelServer; slots: number },
  cloud: { server: ModelServer; slots: number },
  def: Omit<OffloadDef, 'edge' | 'cloud'>,
): Promise<EdgeAndCloud> {
  const gw = await offloadGateway({ ...def, edge: [{ url: edge.server.url, slots: edge.slots }], cloud: [{ url: cloud.server.url, slots: cloud.slots }] });
  const pool = newPool(gw.httpUrl);
  return {
    edge: edge.server,
    cloud: cloud.server,
    gw,
    pool,
    async close() {
      await pool.close();
      await gw.close();
      await edge.server.close();
      await cloud.server.close();
    },
  };
}

export interface Reply {
  status: number;
  code: string | undefined;
  servedBy: string | undefined;
  ms: number;
  /** performance.now() when it was sent. */
  sentAt: number;
  body: string;
}

export function irisBody(row: number[]): string {
  return JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: row }] });
}

export const BODY = irisBody([1, 2, 3, 4]);

export async function infer(pool: Pool, model: string, opts: { body?: string; timeoutMs?: number } = {}): Promise<Reply> {
  const sentAt = performance.now();
  const headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };
  if (opts.timeoutMs !== undefined) headers['x-request-timeout'] = `${opts.timeoutMs}ms`;
  const res = await pool.request({ method: 'POST', path: `/v2/models/${model}/infer`, headers, body: opts.body ?? BODY });
  const body = await res.body.text();
  const h = (n: string): string | undefined => {
    const v = res.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  return { status: res.statusCode, code: h('x-modelguard-error'), servedBy: h('x-modelguard-served-by'), ms: performance.now() - sentAt, sentAt, body };
}

/** POST inference requests a model server received (health probes and metadata left out). */
export function inferencesAt(server: ModelServer, since = 0): number {
  return server.requests().filter((r) => r.method === 'POST' && r.at >= since).length;
}

export function newPool(url: string): Pool {
  return new Pool(url, { connections: 256, pipelining: 1 });
}

/** Reads one sample of a metric from the admin listener (sums matching series). */
export async function metric(adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Polls a metric until it equals `expected` (a request's record is published when the server closes
 * its answer, which can come after the client has read it), then returns the last value read.
 */
export async function metricSettles(adminUrl: string, name: string, labels: Record<string, string>, expected: number, timeoutMs = 2000): Promise<number> {
  const end = performance.now() + timeoutMs;
  let value = await metric(adminUrl, name, labels);
  while (value !== expected && performance.now() < end) {
    await delay(20);
    value = await metric(adminUrl, name, labels);
  }
  return value;
}

/** Open-loop load, `rate` requests per second for `durationMs`, from another process (test/offload/load-child.ts). */
export function openLoopProcess(url: string, model: string, rate: number, durationMs: number): Promise<Pick<Reply, 'status' | 'code' | 'servedBy' | 'ms'>[]> {
  const root = new URL('../../', import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'test/offload/load-child.ts', url, model, KEY, String(rate), String(durationMs)], { cwd: root, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      if (err) reject(new Error(`load process failed: ${err.message}`));
      else {
        const rows = JSON.parse(stdout) as { status: number; code: string | null; servedBy: string | null; ms: number }[];
        resolve(rows.map((r) => ({ status: r.status, code: r.code ?? undefined, servedBy: r.servedBy ?? undefined, ms: r.ms })));
      }
    });
  });
}
