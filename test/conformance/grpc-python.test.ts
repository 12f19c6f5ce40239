/**
 * Python's gRPC stack against ModelGuard's gRPC listener: grpcio (C-core, what Triton's Python gRPC
 * client runs on) and protobuf from Debian, with message classes compiled by Debian's protoc from the
 * published Open Inference Protocol proto at test time. The driver (fixtures/grpc_python_drive.py)
 * sends what Triton's Python gRPC client sends (raw_input_contents for every input) to an HTTP and a
 * gRPC backend behind aliases, and compares with a direct call to the model server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { PROTO_PATH } from '../../src/grpc/wire.ts';
import { conformanceSetup, KEY, type Conformance } from './helpers.ts';

const DRIVER = fileURLToPath(new URL('./fixtures/grpc_python_drive.py', import.meta.url));

function run(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('Python gRPC (grpcio + protobuf) through ModelGuard\'s gRPC listener', () => {
  let s: Conformance;
  let generated: string;
  before(async () => {
    generated = mkdtempSync(join(tmpdir(), 'mg-pb2-'));
    const protoc = await run('/usr/bin/protoc', [`--proto_path=${dirname(PROTO_PATH)}`, `--python_out=${generated}`, basename(PROTO_PATH)]);
    assert.equal(protoc.code, 0, protoc.stderr);
    s = await conformanceSetup();
  });
  after(async () => {
    await s.close();
    rmSync(generated, { recursive: true, force: true });
  });

  it('raw and typed tensors (-0.0, NaN, ±Inf, subnormals, INT64 beyond 2^53) byte for byte as a direct call, model_name as asked, metadata and readiness, refusals with their gRPC status and code', { timeout: 120_000 }, async () => {
    const r = await run('/usr/bin/python3', [DRIVER, s.gw.grpcUrl, KEY, new URL(s.demo.grpcUrl as string).host, 'ident', 'id-h', 'id-g'], { PYTHONPATH: generated, PYTHONDONTWRITEBYTECODE: '1' });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const result = JSON.parse(last) as { checks: number; failures: string[] };
    assert.deepEqual(result.failures, []);
    // ServerLive + ServerReady, 19 per model (4 answer, 7 tensors, served-by, 2 bit checks, 3 typed, ready, metadata), 4 refusals.
    assert.equal(result.checks, 2 + 19 * 2 + 4);
    for (const e of s.gw.broker.status().endpoints) assert.equal(e.healthy, true, `${e.url} healthy`);
  });
});
