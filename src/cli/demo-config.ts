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
        mqtt: { url: listeners.mqtt ?? DEMO_MQTT, embedded: true },
      },
    },
    {
      apiVersion: API,
      kind: 'Backend',
      metadata: { name: 'demo-accelerator' },
      spec: { protocol: 'kserve-v2-http', endpoints: [{ url: modelServerUrl, slots: 2 }], timeout: '10s', healthCheck: { interval: '2s' } },
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
