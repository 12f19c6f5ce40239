/**
 * Offload configuration mistakes are errors (or warnings, for things that may be right on the box
 * that runs ModelGuard) with the file, line and a hint.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { issue, loadError } from '../config/helpers.ts';

function file(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'mg-offload-')), 'config.yaml');
  writeFileSync(path, yaml);
  return path;
}

const BACKENDS = `kind: Backend
metadata: { name: edge }
spec: { endpoints: [{ url: "http://127.0.0.1:8000" }] }
---
kind: Backend
metadata: { name: llm }
spec: { protocol: openai, endpoints: [{ url: "http://127.0.0.1:8001" }] }
---
`;

describe('offload configuration', () => {
  it('hard-example needs a threshold, and its settings need hard-example', async () => {
    const path = file(`${BACKENDS}kind: Backend
metadata: { name: cloud }
spec: { endpoints: [{ url: "https://cloud.example.com" }] }
---
kind: Model
metadata: { name: a }
spec:
  backend: edge
  offload: { backend: cloud, when: hard-example }
---
kind: Model
metadata: { name: b }
spec:
  backend: edge
  offload: { backend: cloud, when: saturated, confidenceThreshold: 0.8 }
---
kind: Model
metadata: { name: c }
spec:
  backend: llm
  offload: { backend: llm, when: hard-example, confidenceThreshold: 0.8 }
`);
    const err = await loadError(path);
    const a = issue(err.issues, 'hard-example needs confidenceThreshold');
    assert.equal(a.file, path);
    assert.equal(a.line, 17);
    assert.match(a.hint ?? '', /confidenceThreshold: 0\.8/);
    const b = issue(err.issues, 'confidenceThreshold applies only with when: hard-example');
    assert.equal(b.line, 23);
    assert.match(b.hint ?? '', /set when: hard-example/);
    issue(err.issues, 'offloads to its own backend');
  });

  it('hard-example reads KServe classification answers only', async () => {
    const err = await loadError(file(`${BACKENDS}kind: Backend
metadata: { name: llm-cloud }
spec: { protocol: openai, endpoints: [{ url: "https://cloud.example.com" }] }
---
kind: Model
metadata: { name: chat }
spec:
  backend: llm
  offload: { backend: llm-cloud, when: hard-example, confidenceThreshold: 0.5 }
`));
    const i = issue(err.issues, 'hard-example reads classification outputs of KServe v2 answers');
    assert.equal(i.line, 17);
    assert.match(i.hint ?? '', /saturated or failover/);
  });

  it('credentials take exactly one of env and file; a client certificate needs cert and key', async () => {
    const err = await loadError(file(`kind: Backend
metadata: { name: cloud }
spec:
  endpoints: [{ url: "https://cloud.example.com" }]
  credentials: { env: CLOUD_KEY, file: /run/secrets/key }
  tls: { cert: /etc/box.pem }
`));
    const c = issue(err.issues, 'credentials need exactly one of env or file');
    assert.equal(c.line, 5);
    assert.match(c.hint ?? '', /never the secret itself/);
    const t = issue(err.issues, 'a client certificate needs both cert and key');
    assert.equal(t.line, 6);
  });

  it('warns about a private model that cannot offload and a secret that is not here', async () => {
    const missing = `MG_TEST_UNSET_${process.pid}`;
    const loaded = await loadConfig(file(`${BACKENDS}kind: Backend
metadata: { name: cloud }
spec:
  endpoints: [{ url: "https://cloud.example.com" }]
  credentials: { env: ${missing} }
  tls: { ca: /nonexistent/ca.pem }
---
kind: Model
metadata: { name: secret }
spec:
  backend: edge
  visibility: private
  offload: { backend: cloud }
---
kind: App
metadata: { name: app }
spec: { apiKeys: [{ sha256: "${'a'.repeat(64)}" }], models: [secret] }
`));
    const w = loaded.warnings;
    assert.match(issue(w, 'is private, so it is never offloaded').hint ?? '', /allowPrivate: true/);
    assert.equal(issue(w, `environment variable ${missing} is not set here`).line, 13);
    issue(w, 'file /nonexistent/ca.pem does not exist here');
    assert.equal(loaded.snapshot.models['secret']?.offload?.allowPrivate, false);
    // The snapshot names where the secret is, never the secret.
    assert.deepEqual(loaded.snapshot.backends['cloud']?.credentials, { env: missing, file: undefined, header: 'authorization', scheme: 'Bearer' });
  });
});
