import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import type { LoadedConfig } from '../../src/config/index.ts';
import { assertAt, fixture, issue, loadError } from './helpers.ts';

describe('loadConfig: a valid multi-file directory', () => {
  let loaded: LoadedConfig;
  before(async () => {
    loaded = await loadConfig(fixture('valid'), { version: 7 });
  });

  it('reads *.yaml and *.yml in name order, skipping dotfiles, other files and sub-directories', () => {
    assert.deepEqual(loaded.sources.map((f) => basename(f)), ['00-gateway.yaml', 'apps.yaml', 'backends.yaml', 'groups.yml', 'models.yaml']);
    assert.equal(loaded.resources.length, 9);
    assert.deepEqual(loaded.warnings, []);
  });

  it('compiles the Gateway', () => {
    assert.equal(loaded.snapshot.version, 7);
    assert.deepEqual(loaded.snapshot.gateway, {
      name: 'edge-box',
      listeners: { http: '0.0.0.0:18080', grpc: '0.0.0.0:18081', admin: '127.0.0.1:19090', broker: '[::1]:18010' },
      listenersGiven: ['grpc', 'admin'],
      auth: 'apiKey',
      fairness: 'requests',
      maxBodyBytes: 16 * 1024 * 1024,
      requestReadTimeoutMs: 30_000,
      mqtt: {
        url: 'mqtt://127.0.0.1:1883',
        embedded: true,
        qos: 1,
        topicPrefix: 'modelguard/v1',
        sharedGroup: undefined,
        clientId: undefined,
        username: undefined,
        passwordFile: undefined,
        tls: undefined,
      },
      sources: { allow: [], deny: ['192.0.2.0/24'] },
      tracing: undefined,
      adminTokenHashes: ['24927b80004eab8cf30f991f02e329e4a633c569053d5e8a25a5f6a33de7ae90'],
      proxies: [],
      nodeTokenHashes: [],
      audit: { destination: '/var/log/modelguard/audit.log', maxBytes: 1024 * 1024, maxFiles: 5 },
    });
  });

  it('compiles Backends: durations in ms, URLs without trailing slash, defaults filled', () => {
    assert.deepEqual(loaded.snapshot.backends, {
      'edge-triton': {
        name: 'edge-triton',
        protocol: 'kserve-v2-http',
        endpoints: [
          { url: 'http://127.0.0.1:8000', slots: 2 },
          { url: 'http://127.0.0.1:8001', slots: 1 },
        ],
        timeoutMs: 30_000,
        dispatchAhead: 1,
        healthCheck: { intervalMs: 2000, timeoutMs: 1000, path: '/v2/health/ready', failureThreshold: 3, panicThreshold: 0.5 },
        cancelInFlight: 'finish',
        retryOnReset: true,
      },
      'cloud-triton': {
        name: 'cloud-triton',
        protocol: 'kserve-v2-grpc',
        endpoints: [{ url: 'https://inference.example.com', slots: 1 }],
        timeoutMs: 60_000,
        dispatchAhead: 0,
        healthCheck: { intervalMs: 10_000, timeoutMs: 1500, path: undefined, failureThreshold: 5, panicThreshold: 0.5 },
        cancelInFlight: 'finish',
        retryOnReset: true,
      },
    });
  });

  it('compiles Models: sizes in bytes, backendModel defaulting to the name', () => {
    assert.deepEqual(loaded.snapshot.models, {
      resnet50: {
        name: 'resnet50',
        backend: 'edge-triton',
        visibility: 'private',
        backendModel: 'resnet50',
        offload: {
          backend: 'cloud-triton',
          when: 'saturated',
          backendModel: 'resnet50',
          allowPrivate: true,
          confidenceThreshold: undefined,
          confidenceOutput: undefined,
          cloudWaitMs: undefined,
          budget: undefined,
          breaker: { failureThreshold: 3, slowCallMs: 1000, openForMs: 1000 },
        },
        maxBodyBytes: 4 * 1024 * 1024,
      },
      yolo: { name: 'yolo', backend: 'edge-triton', visibility: 'public', backendModel: 'yolov8n', offload: undefined, maxBodyBytes: 1048576, batching: { maxBatchSize: 8, maxDelayMs: 5 } },
    });
  });

  it('compiles ServiceGroups and adds the default group', () => {
    assert.deepEqual(loaded.snapshot.groups, {
      default: { name: 'default', priority: 0, weight: 1, reservedSlots: 0, queue: { maxLength: 100, maxWaitMs: 5000, earlyRefusal: true } },
      safety: { name: 'safety', priority: 10, weight: 3, reservedSlots: 1, queue: { maxLength: 200, maxWaitMs: 2000, earlyRefusal: true } },
      batch: { name: 'batch', priority: 0, weight: 0.5, reservedSlots: 0, queue: { maxLength: 100, maxWaitMs: 250, earlyRefusal: true } },
    });
  });

  it('compiles Apps: key hashes lower-cased and sorted, burst defaulting to ceil(requestsPerSecond)', () => {
    assert.deepEqual(loaded.snapshot.apps, {
      'camera-line-1': {
        name: 'camera-line-1',
        serviceGroup: 'safety',
        keyHashes: [
          '132b487632d91eaf07c51696dec9ba3c7d361ef767a68ce2317e0ced385dc541',
          '1ccfc910b2d8019671d2a95eea9a04fb6bc15b7f12b2abe34de187b97e0a7e8e',
        ],
        models: ['resnet50'],
        rateLimit: { requestsPerSecond: 50, burst: 100 },
        modelRateLimits: { resnet50: { requestsPerSecond: 5, burst: 5 } },
        maxInflight: 4,
        quota: { requestsPerHour: undefined, requestsPerDay: 10000 },
        operations: ['admin', 'infer', 'metadata'],
        sources: { allow: ['10.0.0.0/8', 'fd00::/8'], deny: ['10.6.6.6'] },
      },
      dashboard: {
        name: 'dashboard',
        serviceGroup: 'default',
        keyHashes: ['24927b80004eab8cf30f991f02e329e4a633c569053d5e8a25a5f6a33de7ae90'],
        models: [],
        rateLimit: { requestsPerSecond: 2.5, burst: 3 },
        modelRateLimits: {},
        maxInflight: undefined,
        quota: undefined,
        operations: ['infer', 'metadata'],
        sources: undefined,
      },
    });
  });
});

describe('loadConfig: a single file and the defaults', () => {
  let loaded: LoadedConfig;
  before(async () => {
    loaded = await loadConfig(fixture('minimal.yaml'));
  });

  it('defaults the version to 1 and records the file', () => {
    assert.equal(loaded.snapshot.version, 1);
    assert.deepEqual(loaded.sources, [fixture('minimal.yaml')]);
  });

  it('applies the Gateway defaults when there is no Gateway', () => {
    assert.deepEqual(loaded.snapshot.gateway, {
      name: 'default',
      listeners: { http: '0.0.0.0:8080', grpc: '0.0.0.0:8081', admin: '127.0.0.1:9460', broker: '0.0.0.0:8010' },
      listenersGiven: [],
      auth: 'apiKey',
      fairness: 'compute',
      maxBodyBytes: 8 * 1024 * 1024,
      requestReadTimeoutMs: 30_000,
      mqtt: undefined,
      sources: undefined,
      tracing: undefined,
      adminTokenHashes: [],
      proxies: [],
      nodeTokenHashes: [],
      audit: undefined,
    });
  });

  it('applies Backend, Model, App and group defaults', () => {
    const { backends, models, apps, groups } = loaded.snapshot;
    assert.deepEqual(backends.triton, {
      name: 'triton',
      protocol: 'kserve-v2-http',
      endpoints: [{ url: 'http://127.0.0.1:8000', slots: 1 }],
      timeoutMs: 30_000,
      dispatchAhead: 0,
      healthCheck: { intervalMs: 5000, timeoutMs: 1000, path: undefined, failureThreshold: 3, panicThreshold: 0.5 },
        cancelInFlight: 'finish',
        retryOnReset: true,
    });
    assert.deepEqual(models.mnist, { name: 'mnist', backend: 'triton', visibility: 'public', backendModel: 'mnist', offload: undefined, maxBodyBytes: undefined });
    assert.deepEqual(apps.demo, {
      name: 'demo',
      serviceGroup: 'default',
      keyHashes: [],
      models: [],
      rateLimit: undefined,
      modelRateLimits: {},
      maxInflight: undefined,
      quota: undefined,
      operations: ['infer', 'metadata'],
      sources: undefined,
    });
    assert.deepEqual(Object.keys(groups), ['default']);
  });

  it('warns (without failing) that an App without keys cannot authenticate', () => {
    const w = issue(loaded.warnings, 'App "demo" spec: has no apiKeys');
    assertAt(w, fixture('minimal.yaml'), 10, 1, 'modelguard keys create --app demo');
  });
});

describe('loadConfig: paths', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelguard-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a path that does not exist is a clear error', async () => {
    const missing = join(dir, 'no-such-config');
    const err = await loadError(missing);
    assert.equal(err.issues.length, 1);
    const [i] = err.issues;
    assert.equal(i?.file, missing);
    assert.equal(i?.line, undefined);
    assert.equal(i?.message, 'no such file or directory');
    assert.match(i?.hint ?? '', /--config takes a YAML file or a directory/);
    assert.equal(err.format(), `${missing}: no such file or directory — hint: ${i?.hint ?? ''}`);
  });

  it('a directory without YAML files is an error', async () => {
    const err = await loadError(dir);
    assert.equal(issue(err.issues, 'no *.yaml or *.yml files').file, dir);
  });

  it('an empty file is a valid, all-default configuration', async () => {
    const file = join(dir, 'empty.yaml');
    await writeFile(file, '# nothing yet\n');
    const loaded = await loadConfig(file);
    assert.deepEqual(loaded.resources, []);
    assert.deepEqual(Object.keys(loaded.snapshot.groups), ['default']);
    assert.equal(loaded.snapshot.gateway.auth, 'apiKey');
  });

  it('an empty spec: means all defaults', async () => {
    const file = join(dir, 'empty-spec.yaml');
    await writeFile(file, 'kind: Gateway\nmetadata: { name: gw }\nspec:\n  # auth: none\n');
    const loaded = await loadConfig(file);
    assert.equal(loaded.snapshot.gateway.name, 'gw');
    assert.equal(loaded.snapshot.gateway.auth, 'apiKey');
  });

  it('a single file is read whatever its extension', async () => {
    const file = join(dir, 'config.txt');
    await writeFile(file, 'kind: ServiceGroup\nmetadata: { name: only }\n');
    const loaded = await loadConfig(file);
    assert.deepEqual(Object.keys(loaded.snapshot.groups).sort(), ['default', 'only']);
  });
});
