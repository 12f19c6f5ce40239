/** Helpers shared by the Kubernetes tests (kept apart from test/helpers/harness.ts, which loads the demo model server). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const NS = 'modelguard-system';
export const CRD_BASE = `/apis/modelguard.io/v1alpha1/namespaces/${NS}`;
export const SECRETS = `/api/v1/namespaces/${NS}/secrets`;
export const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function fixture<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8')) as T;
}

/** A custom resource as `kubectl apply` would store it. */
export function cr(kind: string, name: string, spec: unknown): { apiVersion: string; kind: string; metadata: { name: string; namespace: string; annotations: Record<string, string> }; spec: unknown } {
  return {
    apiVersion: 'modelguard.io/v1alpha1',
    kind,
    metadata: { name, namespace: NS, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
    spec,
  };
}

export function secret(name: string, data: Record<string, string>): { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; type: string; data: Record<string, string> } {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: NS },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

/** API objects and AdmissionReviews as the tests read them: parsed JSON, read at any depth. */
export type Json = ReturnType<typeof JSON.parse>;
