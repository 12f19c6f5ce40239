/**
 * ModelGuard configuration for the benchmarks, in one builder: a Gateway (`auth: none`, so every
 * request lands in the `default` group, or an API key), one kserve-v2-http Backend on the simulated
 * accelerator or the zero-cost upstream, the model `demo`, and one ServiceGroup's queue. Written as
 * YAML into a temp dir, the way an operator runs `modelguard up --config DIR`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './processes.ts';

export interface BenchConfig {
  /** One endpoint (`acceleratorUrl`), or several replicas (`endpoints`). */
  readonly acceleratorUrl?: string;
  readonly endpoints?: readonly string[];
  /** Slots per endpoint. */
  readonly slots: number;
  readonly dispatchAhead?: number;
  /** Backend call limit (duration). */
  readonly timeout?: string;
  /** Backend health check, as YAML flow text (e.g. `{ interval: 500ms, timeout: 300ms }`). */
  readonly healthCheck?: string;
  /** The group's queue; the group is `default`, or the API key's app's group. */
  readonly maxLength?: number;
  /** Longest wait in the queue (duration). */
  readonly maxWait?: string;
  readonly earlyRefusal?: boolean;
  /** `auth: apiKey` with one app `bench` in group `bench` holding this key (sha256 hex); else `auth: none`. */
  readonly apiKeySha256?: string;
  /** A proxy credential (sha256 hex of its token) for split roles. */
  readonly proxyTokenSha256?: string;
  /** Access log on or off (omitted: the default, on). */
  readonly accessLog?: boolean;
  /** More resources, appended as written. */
  readonly extra?: string;
}

/**
 * The benchmarks' configuration: one Gateway, one kserve-v2-http Backend `accel`, the model `demo`,
 * one ServiceGroup with the queue asked for, and an app with an API key when one is given.
 */
export function configYaml(c: BenchConfig): string {
  const urls = c.endpoints ?? (c.acceleratorUrl === undefined ? [] : [c.acceleratorUrl]);
  if (urls.length === 0) throw new Error('configYaml: give acceleratorUrl or endpoints');
  const group = c.apiKeySha256 === undefined ? 'default' : 'bench';
  const gateway = [`  auth: ${c.apiKeySha256 === undefined ? 'none' : 'apiKey'}`];
  if (c.accessLog !== undefined) gateway.push(`  accessLog: { enabled: ${c.accessLog} }`);
  if (c.proxyTokenSha256 !== undefined) gateway.push(`  proxies: [{ name: p, tokens: [{ sha256: ${c.proxyTokenSha256} }] }]`);
  const backend = [`  timeout: ${c.timeout ?? '30s'}`, `  dispatchAhead: ${c.dispatchAhead ?? 0}`];
  if (c.healthCheck !== undefined) backend.push(`  healthCheck: ${c.healthCheck}`);
  const queue = [c.maxLength === undefined ? undefined : `maxLength: ${c.maxLength}`, c.maxWait === undefined ? undefined : `maxWait: ${c.maxWait}`, c.earlyRefusal === undefined ? undefined : `earlyRefusal: ${c.earlyRefusal}`].filter((q) => q !== undefined);
  const docs = [
    `kind: Gateway\nmetadata: { name: default }\nspec:\n${gateway.join('\n')}\n`,
    `kind: Backend\nmetadata: { name: accel }\nspec:\n  protocol: kserve-v2-http\n  endpoints:\n${urls.map((u) => `    - { url: "${u}", slots: ${c.slots} }`).join('\n')}\n${backend.join('\n')}\n`,
    `kind: Model\nmetadata: { name: demo }\nspec: { backend: accel }\n`,
    `kind: ServiceGroup\nmetadata: { name: ${group} }\nspec:${queue.length === 0 ? ' {}' : `\n  queue: { ${queue.join(', ')} }`}\n`,
  ];
  if (c.apiKeySha256 !== undefined) docs.push(`kind: App\nmetadata: { name: bench }\nspec:\n  serviceGroup: bench\n  apiKeys: [{ sha256: ${c.apiKeySha256} }]\n`);
  const yaml = docs.map((d) => `apiVersion: modelguard.io/v1alpha1\n${d}`).join('---\n');
  return c.extra === undefined ? yaml : `${yaml}---\n${c.extra}`;
}

/** Writes the configuration into a fresh temp directory and returns the directory. */
export function writeConfig(c: BenchConfig): string {
  const dir = tempDir('config');
  writeFileSync(join(dir, 'modelguard.yaml'), configYaml(c));
  return dir;
}

export const INFER_PATH = '/v2/models/demo/infer';
export const INFER_BODY = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
export const JSON_HEADERS: Readonly<Record<string, string>> = { 'content-type': 'application/json' };
