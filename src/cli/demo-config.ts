/**
 * The embedded demo of `modelguard up` with no configuration: a real ONNX model on the embedded
 * model server, two service groups sharing it 3:1, two apps with fresh keys, one private model.
 */
import type { ResourceInput } from '../config/schema.ts';
import { createKey, type NewKey } from '../security/keys.ts';

export interface DemoSetup {
  readonly resources: ResourceInput[];
  readonly keys: Readonly<Record<string, NewKey>>;
}

const API = 'modelguard.io/v1alpha1';
/**
 * The demo accelerator: 2 slots, each inference holding its slot at least 20 ms (the real Iris model
 * computes in ~35 µs, far too fast for one laptop to overload). 100 inferences/s in all, so under
 * `demo-load` gold's 3 shares are 75/s and bronze's 1 share 25/s, inside bronze's own rate limit
 * of 50/s: the split shows the weights, not the limit.
 */
export const DEMO_SLOTS = 2;
export const DEMO_SERVICE_TIME = '20ms';

/** The embedded MQTT broker of the demo (DESIGN.md default port). */
export const DEMO_MQTT = 'mqtt://127.0.0.1:1883';

export function demoResources(modelServerUrl: string, listeners: { http: string; grpc?: string; admin: string; mqtt?: string }): DemoSetup {
  const keys = { 'camera-line-1': createKey(), 'batch-analytics': createKey() };
  const resources: ResourceInput[] = [
    {
      apiVersion: API,
      kind: 'Gateway',
      metadata: { name: 'default' },
      spec: {
        listeners: { http: listeners.http, ...(listeners.grpc !== undefined && { grpc: listeners.grpc }), admin: listeners.admin },
        auth: 'apiKey',
        // Every demo inference costs the same 20 ms: counting requests shares the accelerator
        // exactly, where measured time (compute, the default) would add the noise of a busy laptop.
        fairness: 'requests',
        mqtt: { url: listeners.mqtt ?? DEMO_MQTT, embedded: true },
      },
    },
    {
      apiVersion: API,
      kind: 'Backend',
      metadata: { name: 'demo-accelerator' },
      spec: { protocol: 'kserve-v2-http', endpoints: [{ url: modelServerUrl, slots: DEMO_SLOTS }], timeout: '10s', healthCheck: { interval: '2s' } },
    },
    { apiVersion: API, kind: 'Model', metadata: { name: 'iris' }, spec: { backend: 'demo-accelerator', visibility: 'public' } },
    {
      apiVersion: API,
      kind: 'Model',
      metadata: { name: 'iris-private' },
      spec: { backend: 'demo-accelerator', backendModel: 'iris', visibility: 'private' },
    },
    { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'gold' }, spec: { priority: 0, weight: 3, queue: { maxLength: 200, maxWait: '2s' } } },
    { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'bronze' }, spec: { priority: 0, weight: 1, queue: { maxLength: 100, maxWait: '2s' } } },
    {
      apiVersion: API,
      kind: 'App',
      metadata: { name: 'camera-line-1' },
      spec: { serviceGroup: 'gold', apiKeys: [{ sha256: keys['camera-line-1'].sha256 }], models: ['iris-private'] },
    },
    {
      apiVersion: API,
      kind: 'App',
      metadata: { name: 'batch-analytics' },
      spec: { serviceGroup: 'bronze', apiKeys: [{ sha256: keys['batch-analytics'].sha256 }], rateLimit: { requestsPerSecond: 50, burst: 100 } },
    },
  ];
  return { resources, keys };
}
