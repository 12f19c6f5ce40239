/**
 * The demo server's KServe v2 gRPC listener: the same models and the same (simulated) accelerator
 * as its REST routes, behind `inference.GRPCInferenceService`. It also serves one method outside
 * that service, `modelguard.demo.Echo/Echo`, for pass-through tests: it answers the request bytes
 * unchanged, copies `x-echo-*` metadata into its initial metadata and (as `x-trailer-*`) its
 * trailers, and fails with the status in `x-echo-status` when one is given.
 */
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { Code } from '../core/grpc-status.ts';
import { inferRequestToRest, inferResponseFromRest, modelMetadataFromJson, WireError } from '../grpc/kserve.ts';
import { methodPath, wire, type Method } from '../grpc/wire.ts';
import { serveOnAccelerator, type ServerContext } from './context.ts';
import { requestRows } from './models.ts';
import { HttpError } from './http.ts';
import { classifyOutputs, encodeRestAnswer, findModel, metadata, parseRestInfer } from './kserve.ts';

export const ECHO_PATH = '/modelguard.demo.Echo/Echo';

type Call = ServerUnaryCall<Buffer, Buffer>;
type Reply = sendUnaryData<Buffer>;

/** Bytes that are not a valid protobuf message (a truncated length-delimited field). */
const GARBAGE = Buffer.from([0x2a, 0xff, 0xff, 0x01, 0x00]);

export interface GrpcHooks {
  /** Called for every call received, before any fault (as the HTTP side records requests). */
  received(path: string, md: Metadata): void;
  /** The fault in force for a call (`inference`-scoped faults hit ModelInfer only). */
  fault(isInference: boolean): 'none' | 'garbage' | 'error500' | 'hang';
}

function failWith(reply: Reply, err: unknown): void {
  if (err instanceof HttpError) {
    const code = err.status === 404 ? Code.NOT_FOUND : err.status >= 500 ? Code.INTERNAL : Code.INVALID_ARGUMENT;
    reply({ code, details: err.message });
  } else if (err instanceof WireError) reply({ code: Code.INVALID_ARGUMENT, details: err.message });
  else reply({ code: Code.INTERNAL, details: err instanceof Error ? err.message : String(err) });
}

function decodeOr<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof HttpError || err instanceof WireError) throw err;
    throw new HttpError(400, `not a valid protobuf message: ${(err as Error).message}`);
  }
}

function modelInfer(ctx: ServerContext, call: Call, reply: Reply): void {
  const req = decodeOr(() => wire.ModelInferRequest.decode(call.request));
  const model = findModel(ctx, req.model_name, req.model_version || undefined);
  // The REST path's own parsing and encoding, through the exact translation both ways: raw contents
  // reach the model (and the identity model's answer) byte for byte.
  const rest = inferRequestToRest(req);
  const { request, binary, classify } = parseRestInfer(rest.body, rest.headers['inference-header-content-length']);
  const work = model.prepare(request);
  const md = call.metadata.get('x-request-id')[0];
  const id = request.id ?? (typeof md === 'string' ? md : ctx.nextId());
  serveOnAccelerator(
    ctx,
    model,
    (gone) => {
      call.once('cancelled', gone);
      return () => call.removeListener('cancelled', gone);
    },
    work,
    (outputs) => {
      try {
        const answer = encodeRestAnswer({ model_name: model.name, model_version: model.versions[0], id }, classifyOutputs(outputs, classify), binary);
        reply(null, inferResponseFromRest(answer.body, answer.headers, rest.raw));
      } catch (err) {
        failWith(reply, err);
      }
    },
    (err) => failWith(reply, err),
    requestRows(request),
  );
}

function echo(call: Call, reply: Reply): void {
  const initial = new Metadata();
  const trailers = new Metadata();
  for (const [key, values] of Object.entries(call.metadata.toJSON())) {
    if (!key.startsWith('x-echo-')) continue;
    for (const v of values) {
      initial.add(key, v);
      trailers.add(`x-trailer-${key.slice('x-echo-'.length)}`, v);
    }
  }
  const wanted = call.metadata.get('x-echo-status')[0];
  if (typeof wanted === 'string' && Number(wanted) !== 0) {
    call.sendMetadata(initial);
    reply({ code: Number(wanted), details: `echo: asked for status ${wanted}`, metadata: trailers });
    return;
  }
  call.sendMetadata(initial);
  reply(null, call.request, trailers);
}

export function createDemoGrpcServer(ctx: ServerContext, hooks: GrpcHooks): Server {
  const server = new Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const handlers: Record<Method, (call: Call, reply: Reply) => void> = {
    ServerLive: (_c, r) => r(null, wire.ServerLiveResponse.encode({ live: true })),
    // The models are loaded before the server listens, so a listening server is ready.
    ServerReady: (_c, r) => r(null, wire.ServerReadyResponse.encode({ ready: true })),
    ServerMetadata: (_c, r) => r(null, wire.ServerMetadataResponse.encode({ name: ctx.serverName, version: ctx.serverVersion, extensions: [] })),
    ModelReady: (c, r) => {
      const ref = decodeOr(() => wire.ModelReadyRequest.decode(c.request));
      findModel(ctx, ref.name, ref.version || undefined);
      r(null, wire.ModelReadyResponse.encode({ ready: true }));
    },
    ModelMetadata: (c, r) => {
      const ref = decodeOr(() => wire.ModelMetadataRequest.decode(c.request));
      r(null, modelMetadataFromJson(metadata(findModel(ctx, ref.name, ref.version || undefined))));
    },
    ModelInfer: (c, r) => modelInfer(ctx, c, r),
  };
  const wrap = (path: string, isInference: boolean, fn: (call: Call, reply: Reply) => void) => (call: Call, reply: Reply): void => {
    hooks.received(path, call.metadata);
    const fault = hooks.fault(isInference);
    if (fault === 'error500') return reply({ code: Code.INTERNAL, details: 'injected fault: error500' });
    if (fault === 'garbage') return reply(null, GARBAGE);
    if (fault === 'hang') return; // no answer until the client gives up or the server stops
    try {
      fn(call, reply);
    } catch (err) {
      failWith(reply, err);
    }
  };
  const id = (b: Buffer): Buffer => b;
  for (const [name, fn] of Object.entries(handlers)) server.register(methodPath(name), wrap(methodPath(name), name === 'ModelInfer', fn), id, id, 'unary');
  server.register(ECHO_PATH, wrap(ECHO_PATH, true, echo), id, id, 'unary');
  return server;
}

export function bindDemoGrpc(server: Server, host: string, port: number): Promise<number> {
  const addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}
