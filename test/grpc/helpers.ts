/**
 * gRPC test helpers: a standard grpc-js client of `inference.GRPCInferenceService` loaded from the
 * same .proto with @grpc/proto-loader (as KServe's and Triton's Node clients do), a generic client
 * for raw bytes, and a setup with the demo server reachable over both HTTP and gRPC.
 */
import { Client, credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_PATH } from '../../src/grpc/wire.ts';
import { accelerator, gateway, keyFor, type SetupDef } from '../helpers/harness.ts';
import type { ModelServer, ModelServerOptions } from '../../src/demo/index.ts';
import type { Gateway } from '../../src/compose/gateway.ts';

const API = 'modelguard.io/v1alpha1';

const definition = loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const pkg = loadPackageDefinition(definition) as unknown as { inference: { GRPCInferenceService: new (target: string, creds: ReturnType<typeof credentials.createInsecure>) => Client } };

export interface Result<T> {
  value: T;
  initial: Metadata;
  trailers: Metadata;
}

export interface Failure {
  code: number;
  details: string;
  trailers: Metadata;
  initial: Metadata | undefined;
}

export function inferenceClient(target: string): Client {
  return new pkg.inference.GRPCInferenceService(target, credentials.createInsecure());
}

export function md(entries: Record<string, string | string[]> = {}): Metadata {
  const m = new Metadata();
  for (const [k, v] of Object.entries(entries)) for (const x of Array.isArray(v) ? v : [v]) m.add(k, x);
  return m;
}

export function auth(key: string, extra: Record<string, string | string[]> = {}): Metadata {
  return md({ authorization: `Bearer ${key}`, ...extra });
}

type UnaryFn = (req: unknown, md: Metadata, opts: { deadline?: number }, cb: (err: ServiceError | null, value: unknown) => void) => { on(e: string, fn: (x: unknown) => void): void; cancel(): void };

/** Calls one RPC; resolves with the answer, rejects with a Failure (code, details, trailers). */
export function call<T = Record<string, unknown>>(client: Client, method: string, req: unknown, metadata = new Metadata(), opts: { deadline?: number; onCall?: (c: { cancel(): void }) => void } = {}): Promise<Result<T>> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, UnaryFn>)[method];
    if (!fn) throw new Error(`no method ${method}`);
    let value: unknown;
    let initial: Metadata | undefined;
    const c = fn.call(client, req, metadata, opts.deadline === undefined ? {} : { deadline: opts.deadline }, (err, v) => {
      if (!err) value = v;
    });
    opts.onCall?.(c);
    c.on('metadata', (m) => (initial = m as Metadata));
    c.on('status', (s) => {
      const st = s as { code: number; details: string; metadata: Metadata };
      if (st.code === 0) resolve({ value: value as T, initial: initial ?? new Metadata(), trailers: st.metadata });
      else {
        const f: Failure & Error = Object.assign(new Error(st.details), { code: st.code, details: st.details, trailers: st.metadata, initial });
        reject(f);
      }
    });
  });
}

/** A call expected to fail: the Failure. */
export async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (err) {
    return err as Failure;
  }
  throw new Error('expected the call to fail');
}

/** Any method with raw bytes in and out (identity serializers), as a generic client does. */
export function rawCall(target: string, path: string, bytes: Buffer, metadata = new Metadata(), opts: { deadline?: number } = {}): Promise<Result<Buffer>> {
  const client = new Client(target, credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve: (r: Result<Buffer>) => void, reject) => {
    let value: Buffer | undefined;
    let initial: Metadata | undefined;
    const c = client.makeUnaryRequest(path, id, id, bytes, metadata, opts, (err, v) => {
      if (!err) value = v;
    });
    c.on('metadata', (m) => (initial = m));
    c.on('status', (s) => {
      if ((s.code as number) === 0) resolve({ value: value ?? Buffer.alloc(0), initial: initial ?? new Metadata(), trailers: s.metadata });
      else reject(Object.assign(new Error(s.details), { code: s.code, details: s.details, trailers: s.metadata, initial }));
    });
  }).finally(() => client.close());
}

export function trailer(m: Metadata | undefined, key: string): string | undefined {
  const v = m?.get(key)[0];
  return typeof v === 'string' ? v : v?.toString();
}

export interface GrpcSetup {
  demo: ModelServer;
  gw: Gateway;
  /** Direct client to the demo server's gRPC listener. */
  direct: Client;
  /** Client to ModelGuard's gRPC listener. */
  mg: Client;
  close(): Promise<void>;
}

/**
 * One demo server with HTTP and gRPC listeners, and ModelGuard with model `demo` on the HTTP
 * backend (`accel`), `demo-g` on the gRPC backend (`accel-grpc`, backendModel `demo`), and a
 * private `secret` on the gRPC backend that no app is granted.
 */
export async function grpcSetup(opts: { demo?: ModelServerOptions; def?: Partial<SetupDef>; grpcSlots?: number; grpcBackend?: Record<string, unknown>; grpcModel?: Record<string, unknown> } = {}): Promise<GrpcSetup> {
  const demo = await accelerator({ slots: 4, grpcPort: 0, ...opts.demo });
  const grpcUrl = demo.grpcUrl as string;
  const gw = await gateway({
    endpoints: [{ url: demo.url, slots: 4 }],
    groups: [{ name: 'g' }],
    ...opts.def,
    extra: [
      {
        apiVersion: API,
        kind: 'Backend',
        metadata: { name: 'accel-grpc' },
        spec: { protocol: 'kserve-v2-grpc', endpoints: [{ url: grpcUrl, slots: opts.grpcSlots ?? 4 }], timeout: '10s', healthCheck: { interval: '200ms', timeout: '150ms' }, ...opts.grpcBackend },
      },
      { apiVersion: API, kind: 'Model', metadata: { name: 'demo-g' }, spec: { backend: 'accel-grpc', backendModel: 'demo', ...opts.grpcModel } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'secret' }, spec: { backend: 'accel-grpc', backendModel: 'demo', visibility: 'private' } },
      ...(opts.def?.extra ?? []),
    ],
  });
  const direct = inferenceClient(new URL(grpcUrl).host);
  const mg = inferenceClient(gw.grpcUrl);
  return {
    demo,
    gw,
    direct,
    mg,
    async close() {
      direct.close();
      mg.close();
      await gw.close();
      await demo.close();
    },
  };
}

export const KEY = keyFor('g');

/** A typed FP32 request for the simulated model. */
export function fp32Request(model: string, data: number[], shape = [1, data.length]): Record<string, unknown> {
  return { model_name: model, id: 'r1', inputs: [{ name: 'input', datatype: 'FP32', shape, contents: { fp32_contents: data } }] };
}
