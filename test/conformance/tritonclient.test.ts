/**
 * NVIDIA's own Triton HTTP client (tritonclient.http, vendored in fixtures/tritonclient from
 * triton-inference-server/client; see fixtures/README.md) against ModelGuard, run by Debian's
 * Python 3 (numpy, geventhttpclient, rapidjson). The driver compares every output with a direct
 * call to the model server, byte for byte, in the three wire forms the client produces.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { conformanceSetup, KEY, type Conformance } from './helpers.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

function drive(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('/usr/bin/python3', [`${FIXTURES}triton_http_drive.py`, ...args], { env: { ...process.env, PYTHONPATH: `${FIXTURES}tritonclient`, PYTHONDONTWRITEBYTECODE: '1' }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('Triton\'s Python HTTP client through ModelGuard', () => {
  let s: Conformance;
  before(async () => {
    s = await conformanceSetup();
  });
  after(async () => {
    await s.close();
  });

  it('binary and JSON wire forms, and classification, to HTTP and gRPC backends: every output byte for byte as a direct call; no endpoint ejected', { timeout: 90_000 }, async () => {
    const r = await drive([new URL(s.gw.httpUrl).host, KEY, new URL(s.demo.url).host, 'ident', 'id-h', 'id-g', '--classify', 'demo', 'demo', 'demo-g']);
    const last = r.stdout.trim().split('\n').pop() ?? '';
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const result = JSON.parse(last) as { checks: number; failures: string[] };
    assert.deepEqual(result.failures, []);
    // 4 forms × 2 models × (their tensors (6 or 5) + model_name), + metadata per model, + classification ×2, + the refusal.
    assert.equal(result.checks, (5 + 6 + 6 + 5) * 2 + 4 * 2 + 2 + 2 + 1);
    for (const e of s.gw.broker.status().endpoints) assert.equal(e.healthy, true, `${e.url} healthy`);
  });
});
