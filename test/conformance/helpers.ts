/**
 * Conformance setup: the demo server with an identity model (`ident`, INPUTn → OUTPUTn, bytes
 * unchanged) on HTTP and gRPC, and ModelGuard with `id-h` on the HTTP backend and `id-g` on the gRPC
 * backend (and the simulated `demo` as `demo` and `demo-g`). Requests are built in the wire forms published by the KServe v2 / Open Inference
 * Protocol and Triton's binary-data extension (docs/protocol/extension_binary_data.md), the forms
 * Triton's own clients send.
 */
import { Pool } from 'undici';
import { credentials, loadPackageDefinition, type Client } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_PATH } from '../../src/grpc/wire.ts';
import { accelerator, gateway, keyFor } from '../helpers/harness.ts';

// 64-bit integers as decimal strings: a client that reads them as JS numbers would round 2^63−1 itself.
const definition = loadSync(PROTO_PATH, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = loadPackageDefinition(definition) as unknown as { inference: { GRPCInferenceService: new (target: string, creds: ReturnType<typeof credentials.createInsecure>) => Client } };
function inferenceClient(target: string): Client {
  return new pkg.inference.GRPCInferenceService(target, credentials.createInsecure());
}
import type { ModelServer } from '../../src/demo/index.ts';
import type { Gateway } from '../../src/compose/gateway.ts';

const API = 'modelguard.io/v1alpha1';
export const KEY = keyFor('g');

export interface Conformance {
  demo: ModelServer;
  gw: Gateway;
  /** HTTP to ModelGuard. */
  mg: Pool;
  /** HTTP straight to the demo server. */
  direct: Pool;
  /** gRPC to ModelGuard and straight to the demo server. */
  mgGrpc: Client;
  directGrpc: Client;
  close(): Promise<void>;
}

export async function conformanceSetup(): Promise<Conformance> {
  const demo = await accelerator({ slots: 4, grpcPort: 0, models: ['demo', { name: 'ident', kind: 'identity' }] });
  const gw = await gateway({
    endpoints: [{ url: demo.url, slots: 4 }],
    models: ['demo'],
    groups: [{ name: 'g' }],
    // Probes get an honest margin on a busy machine: only answers are under test here.
    backend: { healthCheck: { interval: '2s', timeout: '1s' } },
    extra: [
      { apiVersion: API, kind: 'Backend', metadata: { name: 'accel-grpc' }, spec: { protocol: 'kserve-v2-grpc', endpoints: [{ url: demo.grpcUrl as string, slots: 4 }], timeout: '10s', healthCheck: { interval: '2s', timeout: '1s' } } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'id-h' }, spec: { backend: 'accel', backendModel: 'ident' } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'id-g' }, spec: { backend: 'accel-grpc', backendModel: 'ident' } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'demo-g' }, spec: { backend: 'accel-grpc', backendModel: 'demo' } },
    ],
  });
  const mg = new Pool(gw.httpUrl, { connections: 4 });
  const direct = new Pool(demo.url, { connections: 4 });
  const mgGrpc = inferenceClient(gw.grpcUrl);
  const directGrpc = inferenceClient(new URL(demo.grpcUrl as string).host);
  return {
    demo,
    gw,
    mg,
    direct,
    mgGrpc,
    directGrpc,
    async close() {
      mgGrpc.close();
      directGrpc.close();
      await mg.close();
      await direct.close();
      await gw.close();
      await demo.close();
    },
  };
}

/** One tensor with its exact little-endian bytes (the binary-data and raw_*_contents layout). */
export interface WireTensor {
  name: string;
  datatype: string;
  shape: number[];
  bytes: Buffer;
  /** The same values as JSON data text, where JSON can carry them (undefined: it cannot). */
  json?: string;
}

function le(size: number, values: readonly (number | bigint)[], write: (b: Buffer, v: never, at: number) => void): Buffer {
  const b = Buffer.alloc(values.length * size);
  values.forEach((v, i) => write(b, v as never, i * size));
  return b;
}

const u16 = (bits: number[]): Buffer => le(2, bits, (b, v: number, at) => b.writeUInt16LE(v, at));

/** BYTES elements in the raw layout: a 4-byte little-endian length before each. */
export function bytesLayout(elements: readonly Buffer[]): Buffer {
  return Buffer.concat(elements.flatMap((e) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(e.length, 0);
    return [len, e];
  }));
}

/** FP32 bits: -0, a NaN with a payload, ±Inf, the smallest subnormal, the largest finite, 0.1. */
const FP32_SPECIAL = le(4, [0x80000000, 0x7fc00123, 0x7f800000, 0xff800000, 0x00000001, 0x7f7fffff, 0x3dcccccd], (b, v: number, at) => b.writeUInt32LE(v, at));
const FP64_SPECIAL = le(8, [0x8000000000000000n, 0x7ff8000000000abcn, 0x7ff0000000000000n, 0xfff0000000000000n, 1n, 0x3fb999999999999an], (b, v: bigint, at) => b.writeBigUInt64LE(v, at));

/** Tensors that hold what JSON cannot carry: NaN, ±Inf, BYTES that are not UTF-8. Binary only. */
export const BINARY_ONLY: WireTensor[] = [
  { name: 'INPUT0', datatype: 'FP32', shape: [7], bytes: FP32_SPECIAL },
  { name: 'INPUT1', datatype: 'FP64', shape: [6], bytes: FP64_SPECIAL },
  // FP16: -0, NaN, +Inf, -Inf, smallest subnormal, 65504; BF16: -0, NaN, -Inf, smallest subnormal.
  { name: 'INPUT2', datatype: 'FP16', shape: [6], bytes: u16([0x8000, 0x7e01, 0x7c00, 0xfc00, 0x0001, 0x7bff]) },
  { name: 'INPUT3', datatype: 'BF16', shape: [4], bytes: u16([0x8000, 0x7fc1, 0xff80, 0x0001]) },
  { name: 'INPUT4', datatype: 'BYTES', shape: [3], bytes: bytesLayout([Buffer.from([0xff, 0x00, 0xfe]), Buffer.alloc(0), Buffer.from('é', 'utf8')]) },
];

/** Tensors JSON can carry exactly (-0.0, subnormals, 2^63−1, 2^64−1), with their JSON data text. */
export const JSON_SAFE: WireTensor[] = [
  { name: 'INPUT0', datatype: 'FP32', shape: [2, 2], bytes: le(4, [0x80000000, 0x00000001, 0x7f7fffff, 0x3dcccccd], (b, v: number, at) => b.writeUInt32LE(v, at)), json: '[-0.0,1.401298464324817e-45,3.4028234663852886e+38,0.10000000149011612]' },
  { name: 'INPUT1', datatype: 'FP64', shape: [3], bytes: le(8, [0x8000000000000000n, 1n, 0x3fb999999999999an], (b, v: bigint, at) => b.writeBigUInt64LE(v, at)), json: '[-0.0,5e-324,0.1]' },
  { name: 'INPUT2', datatype: 'INT64', shape: [3], bytes: le(8, [2n ** 63n - 1n, -(2n ** 63n), -1n], (b, v: bigint, at) => b.writeBigInt64LE(v, at)), json: '[9223372036854775807,-9223372036854775808,-1]' },
  { name: 'INPUT3', datatype: 'UINT64', shape: [2], bytes: le(8, [2n ** 64n - 1n, 2n ** 53n + 1n], (b, v: bigint, at) => b.writeBigUInt64LE(v, at)), json: '[18446744073709551615,9007199254740993]' },
  { name: 'INPUT4', datatype: 'BYTES', shape: [2], bytes: bytesLayout([Buffer.from('héllo'), Buffer.from('')]), json: '["héllo",""]' },
  { name: 'INPUT5', datatype: 'BOOL', shape: [3], bytes: Buffer.from([1, 0, 1]), json: '[true,false,true]' },
  { name: 'INPUT6', datatype: 'INT8', shape: [2], bytes: Buffer.from([0x80, 0x7f]), json: '[-128,127]' },
  { name: 'INPUT7', datatype: 'FP16', shape: [2], bytes: u16([0x8000, 0x0001]), json: '[-0.0,5.960464477539063e-8]' },
];

export type OutputForm = 'binary' | 'json' | 'all-binary';

/**
 * A KServe v2 REST infer body. `inputsBinary`: inputs as binary data (`binary_data_size`, bytes after
 * the header) or JSON `data`. Outputs: `binary` asks each output with `binary_data: true` (what
 * `InferRequestedOutput(name)` sends), `json` with `binary_data: false`, `all-binary` names none and
 * sets `binary_data_output: true` (what Triton's client sends when no outputs are given).
 */
export function restBody(tensors: readonly WireTensor[], inputsBinary: boolean, outputs: OutputForm): { body: Buffer; headers: Record<string, string> } {
  const inputs = tensors.map((t) => {
    const head = `{"name":${JSON.stringify(t.name)},"shape":${JSON.stringify(t.shape)},"datatype":"${t.datatype}"`;
    if (inputsBinary) return `${head},"parameters":{"binary_data_size":${t.bytes.length}}}`;
    if (t.json === undefined) throw new Error(`${t.name} cannot travel as JSON`);
    return `${head},"data":${t.json}}`;
  });
  const outName = (n: string): string => n.replace('INPUT', 'OUTPUT');
  const outs = outputs === 'all-binary' ? '' : `,"outputs":[${tensors.map((t) => `{"name":"${outName(t.name)}","parameters":{"binary_data":${outputs === 'binary'}}}`).join(',')}]`;
  const params = outputs === 'all-binary' ? ',"parameters":{"binary_data_output":true}' : '';
  const header = Buffer.from(`{"id":"c1"${params},"inputs":[${inputs.join(',')}]${outs}}`);
  if (!inputsBinary) return { body: header, headers: { 'content-type': 'application/json' } };
  return { body: Buffer.concat([header, ...tensors.map((t) => t.bytes)]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
}

export interface RestAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The JSON header (the whole body without the extension). */
  header: Record<string, unknown>;
  /** The header's text. */
  text: string;
  /** Binary bytes of each output that declared binary_data_size, by name. */
  binary: Map<string, Buffer>;
}

export async function post(pool: Pool, path: string, req: { body: Buffer; headers: Record<string, string> }, key?: string): Promise<RestAnswer> {
  const headers = { ...req.headers, ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) };
  const res = await pool.request({ method: 'POST', path, headers, body: req.body });
  const body = Buffer.from(await res.body.arrayBuffer());
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') flat[k] = v;
  const hl = flat['inference-header-content-length'];
  const headerLength = hl === undefined ? body.length : Number(hl);
  const text = body.subarray(0, headerLength).toString('utf8');
  let header: Record<string, unknown> = {};
  try {
    header = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // left empty: the caller's assertions on status and text say what went wrong
  }
  const binary = new Map<string, Buffer>();
  let at = headerLength;
  for (const o of (header['outputs'] as { name: string; parameters?: { binary_data_size?: number } }[] | undefined) ?? []) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    binary.set(o.name, body.subarray(at, at + size));
    at += size;
  }
  return { status: res.statusCode, headers: flat, body, header, text, binary };
}
