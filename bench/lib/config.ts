/**
 * ModelGuard configuration for a benchmark: one Gateway without keys (`auth: none`, so every
 * request lands in the `default` group), one kserve-v2-http Backend on the simulated accelerator,
 * the model `demo`, and the `default` ServiceGroup's queue. Written as YAML into a temp dir, the
 * way an operator runs `modelguard up --config DIR`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './processes.ts';

export interface BenchConfig {
  readonly acceleratorUrl: string;
  readonly slots: number;
  readonly dispatchAhead?: number;
  /** Backend call limit (duration). */
  readonly timeout?: string;
  readonly maxLength: number;
  /** Longest wait in the queue (duration). */
  readonly maxWait: string;
}

export function configYaml(c: BenchConfig): string {
  return `apiVersion: modelguard.io/v1alpha1
kind: Gateway
metadata: { name: default }
spec:
  auth: none
---
apiVersion: modelguard.io/v1alpha1
kind: Backend
metadata: { name: accel }
spec:
  protocol: kserve-v2-http
  endpoints:
    - url: ${c.acceleratorUrl}
      slots: ${c.slots}
  timeout: ${c.timeout ?? '30s'}
  dispatchAhead: ${c.dispatchAhead ?? 0}
---
apiVersion: modelguard.io/v1alpha1
kind: Model
metadata: { name: demo }
spec: { backend: accel }
---
apiVersion: modelguard.io/v1alpha1
kind: ServiceGroup
metadata: { name: default }
spec:
  queue: { maxLength: ${c.maxLength}, maxWait: ${c.maxWait} }
`;
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
