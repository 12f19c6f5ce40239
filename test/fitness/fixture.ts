/**
 * The configuration and traffic the fitness tests share: one kserve-v2-http Backend (an upstream
 * the test runs), one Model, one ServiceGroup, one App with an API key, and a proxy credential.
 */
import { request } from 'undici';
import { sha256Hex } from '../../src/security/identity.ts';

export const API_KEY = 'mg_fitness_key';
export const PROXY_TOKEN = 'fitness-proxy-token';
const INFER = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
/** What the upstream answers every infer call with. */
export const ANSWER = JSON.stringify({ model_name: 'demo', outputs: [{ name: 'output', shape: [1, 1], datatype: 'FP32', data: [1] }] });

/** The resources, with `extra` lines added to the Gateway's spec. */
export function resources(upstream: string, extra: string): string {
  return `apiVersion: modelguard.io/v1alpha1
kind: Gateway
metadata: { name: default }
spec:
  proxies: [{ name: p1, tokens: [{ sha256: ${sha256Hex(PROXY_TOKEN)} }] }]
${extra}---
apiVersion: modelguard.io/v1alpha1
kind: Backend
metadata: { name: accel }
spec:
  protocol: kserve-v2-http
  endpoints: [{ url: "${upstream}", slots: 2 }]
---
apiVersion: modelguard.io/v1alpha1
kind: Model
metadata: { name: demo }
spec: { backend: accel }
---
apiVersion: modelguard.io/v1alpha1
kind: ServiceGroup
metadata: { name: main }
spec: {}
---
apiVersion: modelguard.io/v1alpha1
kind: App
metadata: { name: app }
spec:
  serviceGroup: main
  apiKeys: [{ sha256: ${sha256Hex(API_KEY)} }]
`;
}

/** One infer call with the app's key; its status. */
export async function infer(url: string): Promise<number> {
  const r = await request(`${url}/v2/models/demo/infer`, { method: 'POST', body: INFER, headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` } });
  await r.body.text();
  return r.statusCode;
}

