import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { assertAt, fixture, issue, loadError } from './helpers.ts';

describe('config errors: YAML syntax', () => {
  const file = fixture('errors/syntax.yaml');

  it('reports every syntax error with its line and a hint', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'Map keys must be unique'), file, 6, 3, 'each key may appear once');
    assertAt(issue(err.issues, 'Tabs are not allowed'), file, 12, 1, 'indent with spaces');
  });

  it('does not report follow-on errors: the Backend in the broken document still counts as declared', async () => {
    const err = await loadError(file);
    assert.equal(err.issues.length, 2, err.format());
    assert.ok(!err.format().includes('does not exist'));
  });
});

describe('config errors: envelope (apiVersion, kind, document shape)', () => {
  const file = fixture('errors/envelope.yaml');

  it('an unknown kind lists the valid kinds and suggests the closest', async () => {
    const err = await loadError(file);
    const i = issue(err.issues, 'unknown kind "Modle"');
    assertAt(i, file, 1, 7, 'did you mean "Model"?');
    assert.match(i.hint ?? '', /valid kinds: Backend, Model, ServiceGroup, App, Gateway/);
  });

  it('an unknown apiVersion names the right one', async () => {
    const err = await loadError(file);
    const i = issue(err.issues, 'unknown apiVersion "modelguard.io/v1"');
    assert.equal(i.message, 'Model "mnist" apiVersion: unknown apiVersion "modelguard.io/v1"');
    assertAt(i, file, 4, 13, 'apiVersion: modelguard.io/v1alpha1');
  });

  it('a missing kind and a non-mapping document are named by their position in the file', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'document 3: kind is required'), file, 8, 1, 'valid kinds:');
    assertAt(issue(err.issues, 'document 4: expected a mapping'), file, 10, 1, 'separate resources with "---"');
    assert.equal(err.issues.length, 4);
  });
});

describe('config errors: unknown and renamed keys', () => {
  const file = fixture('errors/keys.yaml');

  it('a renamed option says where it lives now', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'spec.maxQueue: unknown key'), file, 4, 3, 'queue.maxLength');
    assertAt(issue(err.issues, 'ServiceGroup "safety" spec.timeout: unknown key'), file, 5, 3, 'queue.maxWait');
    assertAt(issue(err.issues, 'spec.replicas: unknown key'), file, 12, 3, 'endpoints');
  });

  it('a misspelt key gets the closest valid key, at any depth', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'spec.queue.maxLenght: unknown key'), file, 7, 5, 'did you mean "maxLength"?');
    const i = issue(err.issues, 'spec.helthCheck: unknown key');
    assertAt(i, file, 14, 3, 'did you mean "healthCheck"?');
    assert.match(i.hint ?? '', /valid keys: protocol, endpoints, timeout, dispatchAhead, healthCheck/);
  });
});

describe('config errors: impossible values', () => {
  const file = fixture('errors/values.yaml');

  it('collects every value error of every document, not just the first', async () => {
    const err = await loadError(file);
    assert.equal(err.issues.length, 10, err.format());
  });

  it('a bare number as a duration asks for a unit', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'spec.timeout: expected a duration'), file, 6, 12, 'add a unit: "30s" (seconds) or "30ms"');
  });

  it('a decimal size unit suggests the binary one', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'spec.maxBodySize: expected a size'), file, 11, 16, 'write "100Ki"');
  });

  it('a number below its minimum names the bound and shows the field description as the hint', async () => {
    const err = await loadError(file);
    const i = issue(err.issues, 'spec.rateLimit.burst');
    assert.equal(i.message, 'App "cam" spec.rateLimit.burst: expected an integer ≥ 1, got 0');
    assertAt(i, file, 17, 45, 'default ceil(requestsPerSecond)');
  });

  it('names, enums, lists, key digests and listener addresses', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'metadata.name: expected a name'), file, 2, 19, 'for example "triton-1"');
    assertAt(issue(err.issues, 'spec.protocol: expected one of kserve-v2-http, kserve-v2-grpc, openai, http, got "kserve"'), file, 4, 13);
    assertAt(issue(err.issues, 'spec.endpoints: expected at least 1 entry, got 0'), file, 5, 14);
    assertAt(issue(err.issues, 'spec.apiKeys[0].sha256'), file, 16, 23, 'store the digest, never the key');
    assertAt(issue(err.issues, 'spec.listeners.http'), file, 22, 22, 'write "0.0.0.0:8080"');
    assertAt(issue(err.issues, 'spec.listeners.admin'), file, 22, 38, '"[::1]:9090"');
  });

  it('a missing required field points at its parent key', async () => {
    const err = await loadError(file);
    const i = issue(err.issues, 'Model "m" spec.backend: is required');
    assertAt(i, file, 10, 1, 'Backend that serves this model');
  });

  it('format() prints one file:line:column line per issue, sorted by position', async () => {
    const err = await loadError(file);
    const lines = err.format().split('\n');
    assert.equal(lines.length, err.issues.length);
    assert.equal(lines[0], `${file}:2:19: ${err.issues[0]?.message ?? ''} — hint: ${err.issues[0]?.hint ?? ''}`);
    assert.ok(lines.includes(`${file}:17:45: App "cam" spec.rateLimit.burst: expected an integer ≥ 1, got 0 — hint: requests allowed at once above the steady rate; default ceil(requestsPerSecond)`));
    const numbers = err.issues.map((i) => i.line ?? 0);
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b));
    assert.ok(err.message.startsWith('invalid configuration (10 problems):\n'));
  });
});

describe('config errors: duplicates across files', () => {
  const dir = fixture('errors/duplicates');
  const a = fixture('errors/duplicates/a.yaml');
  const b = fixture('errors/duplicates/b.yaml');

  it('a duplicate name within a kind points at both places', async () => {
    const err = await loadError(dir);
    assertAt(issue(err.issues, 'duplicate ServiceGroup name "safety"'), b, 2, 19, `first defined at ${a}:5:19`);
  });

  it('a second Gateway is an error', async () => {
    const err = await loadError(dir);
    assertAt(issue(err.issues, 'a second Gateway'), b, 4, 7, `merge it into the Gateway at ${a}:1:7`);
  });

  it('one API key (compared lower-cased) may identify one App only', async () => {
    const err = await loadError(dir);
    const i = issue(err.issues, 'this key is already listed for App "cam"');
    assertAt(i, b, 10, 23, `${a}:10:23`);
    assert.equal(err.issues.length, 3);
  });
});

describe('config errors: references', () => {
  const file = fixture('errors/references.yaml');

  it('dangling Model.spec.backend and offload.backend list the existing Backends', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'Model "resnet50" spec.backend: Backend "egde" does not exist'), file, 12, 12, 'did you mean "edge"? defined Backends: edge, llm');
    assertAt(issue(err.issues, 'spec.offload.backend: Backend "cloud" does not exist'), file, 13, 23, 'defined Backends: edge, llm');
  });

  it('dangling App.spec.serviceGroup and App.spec.models entries', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'ServiceGroup "safety" does not exist'), file, 30, 17, 'defined ServiceGroups: default');
    assertAt(issue(err.issues, 'spec.models[1]: Model "yolov8" does not exist'), file, 31, 22, 'did you mean "yolo"?');
  });

  it('offload to the model\'s own backend, or across protocol families, is impossible', async () => {
    const err = await loadError(file);
    assertAt(issue(err.issues, 'offloads to its own backend'), file, 19, 23, 'name another Backend');
    assertAt(issue(err.issues, 'Backend "llm" speaks openai but "edge" speaks kserve-v2-http'), file, 25, 23, 'between KServe v2 and OpenAI');
    assert.equal(err.issues.length, 6);
  });
});

describe('config warnings: valid but without effect', () => {
  it('a private model nobody is granted, and a grant of a public model', async () => {
    const file = fixture('warnings.yaml');
    const loaded = await loadConfig(file);
    assertAt(issue(loaded.warnings, 'Model "secret" spec.visibility: is private and no App lists it'), file, 7, 36, 'add "secret" to an App\'s models');
    assertAt(issue(loaded.warnings, 'Model "open" is public, so this grant has no effect'), file, 16, 12);
    assert.equal(loaded.warnings.length, 3); // and the App without keys
  });
});
