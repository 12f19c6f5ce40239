import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileResources, formatIssue, loadConfig } from '../../src/config/index.ts';
import type { LoadedConfig, ResourceInput } from '../../src/config/index.ts';
import { canonicalJson } from '../../src/config/seal.ts';
import { fixture, issue, syncError } from './helpers.ts';

const VALID_FILES = ['00-gateway.yaml', 'apps.yaml', 'backends.yaml', 'groups.yml', 'models.yaml'];

async function validText(name: string): Promise<string> {
  return readFile(fixture(join('valid', name)), 'utf8');
}

describe('snapshot: frozen', () => {
  let loaded: LoadedConfig;
  before(async () => {
    loaded = await loadConfig(fixture('valid'));
  });

  it('is frozen all the way down', () => {
    const s = loaded.snapshot;
    for (const part of [s, s.gateway, s.gateway.listeners, s.groups, s.groups.default, s.backends['edge-triton']?.endpoints[0], s.apps.dashboard?.keyHashes]) {
      assert.ok(Object.isFrozen(part));
    }
    assert.throws(() => {
      (s.groups as Record<string, unknown>).extra = {};
    }, TypeError);
    assert.throws(() => {
      (s.apps['camera-line-1']?.models as string[]).push('yolo');
    }, TypeError);
  });

  it('freezes the validated resources too', () => {
    assert.ok(Object.isFrozen(loaded.resources));
    assert.ok(Object.isFrozen(loaded.resources[0]?.metadata));
    assert.ok(Object.isFrozen(loaded.warnings));
  });
});

describe('snapshot: hash', () => {
  let dir: string;
  let reference: LoadedConfig;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'modelguard-hash-'));
    reference = await loadConfig(fixture('valid'), { version: 1 });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is the sha256 of the canonical JSON of everything but version and hash', () => {
    const { version: _v, hash, ...content } = reference.snapshot;
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal(hash, createHash('sha256').update(canonicalJson(content)).digest('hex'));
  });

  it('is stable across file layout, document order, key order, version and key-hash case', async () => {
    const texts = await Promise.all(VALID_FILES.map(validText));
    // One file, documents in reverse order, App keys swapped and upper-cased.
    const docs = texts.join('\n---\n').split(/^---$/m).reverse();
    const swapped = docs
      .join('\n---\n')
      .replace('132b487632d91eaf07c51696dec9ba3c7d361ef767a68ce2317e0ced385dc541', 'TMP')
      .replace('"1CCFC910B2D8019671D2A95EEA9A04FB6BC15B7F12B2ABE34DE187B97E0A7E8E"', '132B487632D91EAF07C51696DEC9BA3C7D361EF767A68CE2317E0CED385DC541')
      .replace('TMP', '1ccfc910b2d8019671d2a95eea9a04fb6bc15b7f12b2abe34de187b97e0a7e8e');
    assert.notEqual(swapped, texts.join('\n---\n'));
    const file = join(dir, 'all-in-one.yaml');
    await writeFile(file, swapped);
    const other = await loadConfig(file, { version: 42 });
    assert.equal(other.snapshot.version, 42);
    assert.equal(other.snapshot.hash, reference.snapshot.hash);
  });

  it('changes when any content changes', async () => {
    const groups = await validText('groups.yml');
    const file = join(dir, 'changed.yaml');
    const rest = await Promise.all(VALID_FILES.filter((f) => f !== 'groups.yml').map(validText));
    await writeFile(file, [...rest, groups.replace('weight: 3', 'weight: 4')].join('\n---\n'));
    const changed = await loadConfig(file);
    assert.equal(changed.snapshot.groups.safety?.weight, 4);
    assert.notEqual(changed.snapshot.hash, reference.snapshot.hash);
  });

  it('canonical JSON sorts keys and drops undefined properties', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: undefined, c: [2, undefined, 'x'] } }), '{"a":{"c":[2,null,"x"]},"b":1}');
  });
});

const KEY = '24927b80004eab8cf30f991f02e329e4a633c569053d5e8a25a5f6a33de7ae90';

describe('compileResources: configuration built in code', () => {
  const demo: ResourceInput[] = [
    { kind: 'Backend', metadata: { name: 'demo-model' }, spec: { endpoints: [{ url: 'http://127.0.0.1:9001/' }], timeout: '2s' } },
    { kind: 'Model', metadata: { name: 'mnist' }, spec: { backend: 'demo-model', maxBodySize: '64Ki' } },
    { kind: 'ServiceGroup', metadata: { name: 'interactive' }, spec: { priority: 1, weight: 2 } },
    { kind: 'App', metadata: { name: 'demo-a' }, spec: { serviceGroup: 'interactive', apiKeys: [{ sha256: KEY.toUpperCase() }] } },
    { kind: 'Gateway', metadata: { name: 'demo' }, spec: { auth: 'none', listeners: { http: '127.0.0.1:0' } } },
  ];

  it('validates and compiles like files do', () => {
    const loaded = compileResources(demo, { version: 3, sources: ['modelguard up (demo)'] });
    assert.deepEqual(loaded.sources, ['modelguard up (demo)']);
    const s = loaded.snapshot;
    assert.equal(s.version, 3);
    assert.deepEqual(s.backends['demo-model']?.endpoints, [{ url: 'http://127.0.0.1:9001', slots: 1 }]);
    assert.equal(s.backends['demo-model']?.timeoutMs, 2000);
    assert.equal(s.models.mnist?.maxBodyBytes, 65536);
    assert.deepEqual(s.apps['demo-a']?.keyHashes, [KEY]);
    assert.deepEqual(s.gateway.listeners, { http: '127.0.0.1:0', grpc: '127.0.0.1:8081', admin: '127.0.0.1:9460', broker: '0.0.0.0:8010' });
    assert.deepEqual(Object.keys(s.groups).sort(), ['default', 'interactive']);
    assert.ok(Object.isFrozen(s.models.mnist));
  });

  it('gives the same snapshot as loading the same resources from YAML (validated resources round-trip)', async () => {
    const fromFiles = await loadConfig(fixture('valid'));
    const again = compileResources(fromFiles.resources, { version: 1 });
    assert.equal(again.snapshot.hash, fromFiles.snapshot.hash);
    assert.deepEqual(again.snapshot, fromFiles.snapshot);
  });

  it('reports errors with the <inline> file name, no line, and the resource named by kind and name or index', () => {
    const bad = [
      { kind: 'Backend', metadata: { name: 'demo-model' }, spec: { endpoints: [], timeout: '5' } },
      { kind: 'Model', metadata: { name: 'mnist' }, spec: { backend: 'demo' } },
      { kind: 'ServiceGroup', metadata: { name: 'fast' }, spec: { maxQueue: 5 } },
      { metadata: { name: 'what' } },
    ] as unknown as ResourceInput[];
    const err = syncError(() => compileResources(bad, { version: 1 }));
    for (const i of err.issues) {
      assert.equal(i.file, '<inline>');
      assert.equal(i.line, undefined);
      assert.equal(i.column, undefined);
    }
    const endpoints = issue(err.issues, 'Backend "demo-model" spec.endpoints: expected at least 1 entry, got 0');
    assert.equal(formatIssue(endpoints), `<inline>: ${endpoints.message} — hint: ${endpoints.hint ?? ''}`);
    assert.match(issue(err.issues, 'spec.timeout').hint ?? '', /add a unit: "5s"/);
    assert.match(issue(err.issues, 'Backend "demo" does not exist').hint ?? '', /defined Backends: demo-model/);
    assert.match(issue(err.issues, 'spec.maxQueue: unknown key').hint ?? '', /queue\.maxLength/);
    assert.ok(issue(err.issues, 'resources[3]: kind is required'));
    assert.equal(err.issues.length, 5);
  });

  it('batching: compiled to milliseconds, absent when off, refused on a backend that does not speak KServe v2', () => {
    const backend = (protocol: string): ResourceInput => ({ kind: 'Backend', metadata: { name: 'b' }, spec: { protocol, endpoints: [{ url: 'http://127.0.0.1:1' }] } } as ResourceInput);
    const model = (spec: object): ResourceInput => ({ kind: 'Model', metadata: { name: 'm' }, spec: { backend: 'b', ...spec } });
    const on = compileResources([backend('kserve-v2-grpc'), model({ batching: { maxBatchSize: 16, maxDelay: '2ms' } })], { version: 1 }).snapshot;
    assert.deepEqual(on.models['m']?.batching, { maxBatchSize: 16, maxDelayMs: 2 });
    const off = compileResources([backend('kserve-v2-http'), model({})], { version: 1 }).snapshot;
    assert.equal('batching' in (off.models['m'] ?? {}), false, 'absent, so older configurations keep their hash');
    const openai = syncError(() => compileResources([backend('openai'), model({ batching: { maxBatchSize: 4 } })], { version: 1 }));
    assert.match(issue(openai.issues, 'spec.batching').message, /KServe v2 tensors along dim 0/);
    assert.match(issue(syncError(() => compileResources([backend('kserve-v2-http'), model({ batching: { maxBatchSize: 0 } })], { version: 1 })).issues, 'spec.batching.maxBatchSize').message, /≥ 1/);
    assert.ok(issue(syncError(() => compileResources([backend('kserve-v2-http'), model({ batching: { maxDelay: '5ms' } })], { version: 1 })).issues, 'spec.batching.maxBatchSize'));
  });

  it('lets the user redefine the default group', () => {
    const loaded = compileResources([{ kind: 'ServiceGroup', metadata: { name: 'default' }, spec: { weight: 2, priority: -1 } }], { version: 1 });
    assert.deepEqual(loaded.snapshot.groups, { default: { name: 'default', priority: -1, weight: 2, reservedSlots: 0, queue: { maxLength: 100, maxWaitMs: 5000, earlyRefusal: true } } });
  });
});
