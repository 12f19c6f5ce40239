/**
 * gRPC ingress: the Open Inference Protocol service `inference.GRPCInferenceService` and unary
 * pass-through of any other method, decoded into the neutral InferenceCall, run through the same
 * pipeline as HTTP, and answered in gRPC's terms.
 *
 * The neutral form of a ModelInfer call is the KServe v2 JSON request (api `kserve-v2`, path
 * `/v2/models/{backendModel}/infer`): the broker, limits and HTTP backends need no change, and a
 * gRPC backend's client translates it back (src/grpc/kserve.ts).
 */
import { Metadata, Server, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import type { Readable } from 'node:stream';
import { readBounded } from '../../core/body.ts';
import { CancelledError } from '../../core/cancel.ts';
import { MGError } from '../../core/errors.ts';
import { Code, grpcDetails, statusForHttp } from '../../core/grpc-status.ts';
import type { ApiKind, BackendReply, Identity, Operation } from '../../core/request.ts';
import type { AppOperation } from '../../core/snapshot.ts';
import { flagFromJson, inferRequestToRest, inferResponseFromRest, modelMetadataFromJson, WireError } from '../../grpc/kserve.ts';
import { GRPC_CONTENT_TYPE, splitReply } from '../../grpc/passthrough.ts';
import { methodPath, wire, type Codec, type Method } from '../../grpc/wire.ts';
import { Exchange, type Named, type Target, type Who } from '../../pipeline/exchange.ts';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import { checkNamedModels, passthroughNeeds } from '../../security/passthrough.ts';
import { errorStatus, type GrpcFailure } from './encode.ts';
import { checkMetadataSize, credentials, deadlineHasPassed, deadlinePassed, forwardMetadata, requestId, single, sourceAddress, timeoutFromDeadline } from './metadata.ts';

const VERSION = '0.1.0';
/** Largest backend answer read for translation. */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;
/** Metadata naming the model a pass-through call goes to. */
export const TARGET_METADATA = 'x-modelguard-model';

type Call = ServerUnaryCall<Buffer, Buffer>;

/** What a handler hands back: a message (with metadata), or a status the backend chose. */
type Answer = { value: Buffer; initial?: Metadata; trailers?: Metadata } | { failure: GrpcFailure };

/** An MGError answered with a more exact gRPC code than the registry's (UNIMPLEMENTED for an unknown method). */
class GrpcCoded extends MGError {
  constructor(readonly grpcCode: number, message: string) {
    super('MG_BAD_REQUEST', message);
  }
}

interface Ctx {
  readonly pipeline: Pipeline;
  readonly call: Call;
  readonly ex: Exchange;
}

const identity = (b: Buffer): Buffer => b;

function decode<T>(codec: Codec<T>, bytes: Buffer, what: string): T {
  try {
    return codec.decode(bytes);
  } catch (err) {
    throw new MGError('MG_BAD_REQUEST', `${what}: not a valid protobuf message (${(err as Error).message})`);
  }
}

const answerTooLarge = (limit: number): MGError => new MGError('MG_BACKEND_ERROR', `backend answer larger than ${limit} bytes`);

function readAll(body: Readable | Buffer): Promise<Buffer> {
  return readBounded(body, { limit: MAX_REPLY_BYTES, over: answerTooLarge, destroyWhenOver: true });
}

function parseAnswer(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new MGError('MG_BACKEND_ERROR', 'backend answered with invalid JSON');
  }
}

/** A backend's own refusal (HTTP 4xx from a KServe backend) in gRPC terms. */
function backendFailure(reply: BackendReply, buf: Buffer): Answer {
  let details = buf.toString('utf8').slice(0, 500);
  try {
    const doc = JSON.parse(details) as { error?: unknown };
    if (typeof doc.error === 'string') details = doc.error;
  } catch {
    // not JSON: the text itself
  }
  const md = new Metadata();
  return { failure: { code: statusForHttp(reply.status), details: details || `backend answered ${reply.status}`, metadata: md } };
}

function modelPath(backendModel: string, version: string): string {
  return `/v2/models/${encodeURIComponent(backendModel)}${version ? `/versions/${encodeURIComponent(version)}` : ''}`;
}

/** Who asks, from the call's metadata. */
function who(ctx: Ctx): Who {
  return { credentials: credentials(ctx.call.metadata) };
}

/** What every call of this adapter names besides its model and body. */
function named(ctx: Ctx, api: ApiKind, op: Operation, permission: AppOperation, model: string, body: Buffer | undefined, target: Named['target']): Named {
  return { api, op, permission, model, ...(body === undefined ? {} : { body }), timeoutMs: timeoutFromDeadline(ctx.call.getDeadline()), target };
}

/** The backend request: the call's metadata as headers, then the translation's own. */
function backendRequest(ctx: Ctx, method: string, path: string, headers: Record<string, string>, body: Buffer | undefined): Target {
  return { method, path, headers: { ...forwardMetadata(ctx.call.metadata), ...headers }, body };
}

async function run(ctx: Ctx, name: (identity: Identity) => Named): Promise<{ reply: BackendReply; body: Buffer }> {
  const { reply } = await ctx.ex.serve(who(ctx), name);
  const body = await readAll(reply.body);
  if (ctx.ex.signal.aborted) throw new CancelledError();
  return { reply, body };
}

/** A translation between protobuf and KServe JSON; what it cannot express is the request's fault or the backend's. */
function translated<T>(code: 'MG_BAD_REQUEST' | 'MG_BACKEND_ERROR', what: string, translate: () => T): T {
  try {
    return translate();
  } catch (err) {
    if (err instanceof WireError) throw new MGError(code, `${what}: ${err.message}`);
    throw err;
  }
}

async function modelInfer(ctx: Ctx, bytes: Buffer): Promise<Answer> {
  ctx.ex.record.api = 'kserve-v2';
  let raw: ReturnType<typeof inferRequestToRest>['raw'] | undefined;
  const { reply, body: answer } = await run(ctx, () => {
    const req = decode(wire.ModelInferRequest, bytes, 'ModelInferRequest');
    return named(ctx, 'kserve-v2', 'infer', 'infer', req.model_name, bytes, (model) => {
      const rest = translated('MG_BAD_REQUEST', 'KServe v2 infer', () => inferRequestToRest(req));
      raw = rest.raw;
      return backendRequest(ctx, 'POST', `${modelPath(model.backendModel, req.model_version)}/infer`, rest.headers, rest.body);
    });
  });
  if (reply.status < 200 || reply.status >= 300) return backendFailure(reply, answer);
  return { value: translated('MG_BACKEND_ERROR', 'backend answer', () => inferResponseFromRest(answer, reply.headers, raw as NonNullable<typeof raw>)) };
}

async function modelMetadataOrReady(ctx: Ctx, bytes: Buffer, ready: boolean): Promise<Answer> {
  ctx.ex.record.api = 'kserve-v2';
  const { reply, body } = await run(ctx, () => {
    const ref = decode(ready ? wire.ModelReadyRequest : wire.ModelMetadataRequest, bytes, ready ? 'ModelReadyRequest' : 'ModelMetadataRequest');
    return named(ctx, 'kserve-v2', 'metadata', 'metadata', ref.name, undefined, (model) =>
      backendRequest(ctx, 'GET', modelPath(model.backendModel, ref.version) + (ready ? '/ready' : ''), {}, undefined),
    );
  });
  if (ready) {
    if (reply.status === 404) return backendFailure(reply, body);
    const ok = reply.status >= 200 && reply.status < 300 && flagFromJson(parseAnswer(body), 'ready');
    return { value: wire.ModelReadyResponse.encode({ ready: ok }) };
  }
  if (reply.status < 200 || reply.status >= 300) return backendFailure(reply, body);
  return { value: translated('MG_BACKEND_ERROR', 'backend answer', () => modelMetadataFromJson(parseAnswer(body))) };
}

/**
 * Any other method: forwarded unchanged to the gRPC backend of the model named in
 * `x-modelguard-model`, as one unit of scheduled work. The backend's status, answer and trailers
 * come back as they were.
 */
async function passthrough(ctx: Ctx, path: string, bytes: Buffer): Promise<Answer> {
  ctx.ex.record.api = 'passthrough';
  const { reply, body } = await run(ctx, () => {
    const target = single(ctx.call.metadata, TARGET_METADATA);
    if (target === undefined || target === '') {
      throw new GrpcCoded(Code.UNIMPLEMENTED, `unknown method ${path}; to pass it through to a model's gRPC backend, name the model in ${TARGET_METADATA} metadata`);
    }
    // What the method needs (admin for repository, shared memory, trace, log settings, statistics)
    // and every model the message names, before anything is forwarded. The permission travels
    // with the call, so a broker behind a proxy checks `admin` again.
    const needs = passthroughNeeds(path, bytes);
    return {
      ...named(ctx, 'passthrough', 'infer', needs.permission, target, bytes, () => backendRequest(ctx, 'POST', path, { 'content-type': GRPC_CONTENT_TYPE }, bytes)),
      check: (model) => {
        checkNamedModels(needs, model);
        const backend = ctx.pipeline.snapshot.backends[model.backend];
        // A proxy knows no backends (its broker checks); where the backend is known it must speak gRPC.
        const knownHere = Object.keys(ctx.pipeline.snapshot.backends).length > 0;
        if (knownHere && backend?.protocol !== 'kserve-v2-grpc') {
          throw new GrpcCoded(Code.UNIMPLEMENTED, `model "${model.name}" is served by backend "${model.backend}" (${backend?.protocol ?? 'unknown'}); gRPC pass-through needs a kserve-v2-grpc backend`);
        }
      },
    };
  });
  const r = splitReply(reply.headers);
  if (r.code !== Code.OK) return { failure: { code: r.code, details: r.details, metadata: r.trailers } };
  return { value: body, initial: r.initial, trailers: r.trailers };
}

function serverLevel(ctx: Ctx, method: Method): Answer {
  ctx.ex.record.api = 'kserve-v2';
  switch (method) {
    case 'ServerLive':
      return { value: wire.ServerLiveResponse.encode({ live: true }) };
    case 'ServerReady':
      return { value: wire.ServerReadyResponse.encode({ ready: ctx.pipeline.ready() }) };
    default:
      return { value: wire.ServerMetadataResponse.encode({ name: 'modelguard', version: VERSION, extensions: [] }) };
  }
}

/** One gRPC call from start to its single answer and its single published record. */
function handler(pipeline: Pipeline, run: (ctx: Ctx, bytes: Buffer) => Promise<Answer> | Answer) {
  return (call: Call, callback: sendUnaryData<Buffer>): void => {
    const tp = call.metadata.get('traceparent')[0];
    const ex = new Exchange(pipeline, { id: requestId(call.metadata), protocol: 'grpc', source: sourceAddress(call.getPeer()), trace: { parent: typeof tp === 'string' ? tp : undefined } });
    let done = false;
    const finish = (code: number): boolean => {
      if (done) return false;
      done = true;
      ex.end(code);
      return true;
    };
    call.on('cancelled', () => {
      if (done) return;
      ex.hangUp();
      finish(Code.CANCELLED);
    });
    const fail = (err: unknown): void => {
      if (done) return;
      const mg = ex.failure(err);
      if (mg === undefined) {
        if (finish(Code.CANCELLED)) callback({ code: Code.CANCELLED, details: 'cancelled' });
        return;
      }
      const f = errorStatus(mg, ex.id, err instanceof GrpcCoded ? err.grpcCode : undefined);
      if (finish(f.code)) callback({ ...f, details: grpcDetails(f.details) });
    };
    const answer = (a: Answer): void => {
      if (done) return;
      if ('failure' in a) {
        a.failure.metadata.set('x-request-id', ex.id);
        if (finish(a.failure.code)) callback({ ...a.failure, details: grpcDetails(a.failure.details) });
        return;
      }
      if (!finish(Code.OK)) return;
      const initial = a.initial ?? new Metadata();
      initial.set('x-request-id', ex.id);
      if (ex.record.servedBy) initial.set('x-modelguard-served-by', ex.record.servedBy);
      call.sendMetadata(initial);
      callback(null, a.value, a.trailers);
    };
    try {
      // At the edge, before identity or decoding: metadata a model server would refuse, and a
      // deadline already gone (grpc-timeout 0, 1n), are answered here and never dispatched.
      checkMetadataSize(call.metadata);
      if (deadlineHasPassed(call.getDeadline())) throw deadlinePassed();
      const result = run({ pipeline, call, ex }, call.request);
      if (result instanceof Promise) result.then(answer, fail);
      else answer(result);
    } catch (err) {
      fail(err);
    }
  };
}

/** The largest message any configuration allows (the transport's cap; exact limits are checked per model). */
function transportLimit(pipeline: Pipeline): number {
  let max = pipeline.snapshot.gateway.maxBodyBytes;
  for (const m of Object.values(pipeline.snapshot.models)) if (m.maxBodyBytes !== undefined && m.maxBodyBytes > max) max = m.maxBodyBytes;
  return max;
}

export interface GrpcIngress {
  readonly server: Server;
  /** False when this grpc-js version offers no hook for unknown methods (pass-through then answers UNIMPLEMENTED). */
  readonly passthrough: boolean;
}

export function createGrpcServer(pipeline: Pipeline): GrpcIngress {
  const server = new Server({
    'grpc.max_receive_message_length': transportLimit(pipeline),
    'grpc.max_send_message_length': -1,
    // Per-call channelz bookkeeping nobody reads here.
    'grpc.enable_channelz': 0,
  });
  const kserve: Record<Method, (ctx: Ctx, bytes: Buffer) => Promise<Answer> | Answer> = {
    ServerLive: (ctx) => serverLevel(ctx, 'ServerLive'),
    ServerReady: (ctx) => serverLevel(ctx, 'ServerReady'),
    ServerMetadata: (ctx) => serverLevel(ctx, 'ServerMetadata'),
    ModelReady: (ctx, b) => modelMetadataOrReady(ctx, b, true),
    ModelMetadata: (ctx, b) => modelMetadataOrReady(ctx, b, false),
    ModelInfer: modelInfer,
  };
  for (const [name, run] of Object.entries(kserve)) {
    server.register(methodPath(name), handler(pipeline, run), identity, identity, 'unary');
  }
  // grpc-js has no public catch-all for unregistered methods; its handler lookup is the one seam.
  // Pass-through is unary: a streaming method's second message ends the call with an error.
  const internals = server as unknown as { _retrieveHandler?: (path: string) => unknown };
  const lookup = internals._retrieveHandler;
  const passthroughOk = typeof lookup === 'function';
  if (!passthroughOk) console.warn('modelguard: this @grpc/grpc-js has no handler lookup to wrap; gRPC pass-through is off (unknown methods get UNIMPLEMENTED)');
  if (passthroughOk) {
    const cache = new Map<string, unknown>();
    internals._retrieveHandler = (path: string): unknown => {
      const found: unknown = lookup.call(server, path);
      if (found) return found;
      let h = cache.get(path);
      if (!h) {
        h = { func: handler(pipeline, (ctx, b) => passthrough(ctx, path, b)), serialize: identity, deserialize: identity, type: 'unary', path };
        if (cache.size < 1000) cache.set(path, h);
      }
      return h;
    };
  }
  return { server, passthrough: passthroughOk };
}

/** Waits up to a second for calls in flight, then cuts the rest. */
export function closeGrpc(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 1000);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
