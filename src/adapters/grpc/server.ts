/**
 * gRPC ingress: the Open Inference Protocol service `inference.GRPCInferenceService` and unary
 * pass-through of any other method, decoded into the neutral InferenceCall, run through the same
 * pipeline as HTTP, and answered in gRPC's terms.
 *
 * The neutral form of a ModelInfer call is the KServe v2 JSON request (api `kserve-v2`, path
 * `/v2/models/{backendModel}/infer`): the broker, limits and HTTP backends need no change, and a
 * gRPC backend's client translates it back (src/grpc/kserve.ts).
 */
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { Code, grpcDetails } from '../../grpc/status.ts';
import type { Readable } from 'node:stream';
import { Cancel } from '../../core/cancel.ts';
import { isMGError, MGError, toMGError } from '../../core/errors.ts';
import { newRecord, type RequestRecord } from '../../core/events.ts';
import type { ApiKind, BackendReply, Identity, InferenceCall, Operation } from '../../core/request.ts';
import { CancelledError } from '../../broker/work.ts';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import { backendTraceparent, startTrace } from '../../observability/trace-context.ts';
import { flagFromJson, inferRequestToRest, inferResponseFromRest, modelMetadataFromJson, WireError } from '../../grpc/kserve.ts';
import { GRPC_CONTENT_TYPE, splitReply } from '../../grpc/passthrough.ts';
import { methodPath, wire, type Codec, type Method } from '../../grpc/wire.ts';
import { parseListen } from '../../compose/listen.ts';
import { checkNamedModels, passthroughNeeds } from '../../security/passthrough.ts';
import { answersNameOther, renameKserveBody } from '../http/rename.ts';
import { errorStatus, statusForHttp, type GrpcFailure } from './encode.ts';
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
  readonly id: string;
  readonly record: RequestRecord;
  readonly signal: Cancel;
  readonly started: number;
}

const identity = (b: Buffer): Buffer => b;

function decode<T>(codec: Codec<T>, bytes: Buffer, what: string): T {
  try {
    return codec.decode(bytes);
  } catch (err) {
    throw new MGError('MG_BAD_REQUEST', `${what}: not a valid protobuf message (${(err as Error).message})`);
  }
}

function readAll(body: Readable | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return Promise.resolve(body);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REPLY_BYTES) {
        body.destroy();
        reject(new MGError('MG_BACKEND_ERROR', `backend answer larger than ${MAX_REPLY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    body.once('end', () => resolve(Buffer.concat(chunks, size)));
    body.once('error', reject);
  });
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

function neutralCall(ctx: Ctx, api: ApiKind, op: Operation, model: string, method: string, path: string, headers: Record<string, string>, body: Buffer | undefined): InferenceCall {
  const h: Record<string, string> = { ...forwardMetadata(ctx.call.metadata), ...headers, 'x-request-id': ctx.id };
  if (ctx.record.trace) h['traceparent'] = backendTraceparent(ctx.record.trace);
  return {
    id: ctx.id,
    protocol: 'grpc',
    api,
    op,
    model,
    method,
    path,
    headers: h,
    body,
    timeoutMs: timeoutFromDeadline(ctx.call.getDeadline()),
    signal: ctx.signal,
    receivedAt: ctx.started,
    costHint: undefined,
  };
}

function checkSize(ctx: Ctx, bytes: Buffer, model: Parameters<Pipeline['maxBodyBytes']>[0]): void {
  const limit = ctx.pipeline.maxBodyBytes(model);
  if (bytes.length > limit) throw new MGError('MG_TOO_LARGE', `message of ${bytes.length} bytes is over the limit of ${limit}`);
}

async function runCall(ctx: Ctx, call: InferenceCall, who: Identity): Promise<{ reply: BackendReply; body: Buffer }> {
  const reply = await ctx.pipeline.run(call, who, ctx.record);
  ctx.record.servedBy = reply.servedBy;
  const body = await readAll(reply.body);
  if (ctx.signal.aborted) throw new CancelledError();
  return { reply, body };
}

async function modelInfer(ctx: Ctx, bytes: Buffer): Promise<Answer> {
  ctx.record.api = 'kserve-v2';
  const who = await ctx.pipeline.authenticate(credentials(ctx.call.metadata), ctx.record);
  const req = decode(wire.ModelInferRequest, bytes, 'ModelInferRequest');
  const model = ctx.pipeline.authorize(who, req.model_name, 'infer', ctx.record);
  checkSize(ctx, bytes, model);
  let translated: ReturnType<typeof inferRequestToRest>;
  try {
    translated = inferRequestToRest(req);
  } catch (err) {
    if (err instanceof WireError) throw new MGError('MG_BAD_REQUEST', `KServe v2 infer: ${err.message}`);
    throw err;
  }
  const call = neutralCall(ctx, 'kserve-v2', 'infer', model.name, 'POST', `${modelPath(model.backendModel, req.model_version)}/infer`, translated.headers, translated.body);
  const { reply, body } = await runCall(ctx, call, who);
  if (reply.status < 200 || reply.status >= 300) return backendFailure(reply, body);
  // An alias is answered with the name the client asked for, as HTTP and MQTT answer it.
  const answer = answersNameOther(model, req.model_name) ? renameKserveBody(body, reply.headers, 'model_name', req.model_name) : { body, headers: reply.headers };
  try {
    return { value: inferResponseFromRest(answer.body, answer.headers, translated.raw) };
  } catch (err) {
    if (err instanceof WireError) throw new MGError('MG_BACKEND_ERROR', `backend answer: ${err.message}`);
    throw err;
  }
}

async function modelMetadataOrReady(ctx: Ctx, bytes: Buffer, ready: boolean): Promise<Answer> {
  ctx.record.api = 'kserve-v2';
  const who = await ctx.pipeline.authenticate(credentials(ctx.call.metadata), ctx.record);
  const ref = decode(ready ? wire.ModelReadyRequest : wire.ModelMetadataRequest, bytes, ready ? 'ModelReadyRequest' : 'ModelMetadataRequest');
  const model = ctx.pipeline.authorize(who, ref.name, 'metadata', ctx.record);
  const path = modelPath(model.backendModel, ref.version) + (ready ? '/ready' : '');
  const { reply, body } = await runCall(ctx, neutralCall(ctx, 'kserve-v2', 'metadata', model.name, 'GET', path, {}, undefined), who);
  if (ready) {
    if (reply.status === 404) return backendFailure(reply, body);
    const ok = reply.status >= 200 && reply.status < 300 && flagFromJson(parseAnswer(body), 'ready');
    return { value: wire.ModelReadyResponse.encode({ ready: ok }) };
  }
  if (reply.status < 200 || reply.status >= 300) return backendFailure(reply, body);
  const named = answersNameOther(model, ref.name) ? renameKserveBody(body, reply.headers, 'name', ref.name).body : body;
  try {
    return { value: modelMetadataFromJson(parseAnswer(named)) };
  } catch (err) {
    if (err instanceof WireError) throw new MGError('MG_BACKEND_ERROR', `backend answer: ${err.message}`);
    throw err;
  }
}

/**
 * Any other method: forwarded unchanged to the gRPC backend of the model named in
 * `x-modelguard-model`, as one unit of scheduled work. The backend's status, answer and trailers
 * come back as they were.
 */
async function passthrough(ctx: Ctx, path: string, bytes: Buffer): Promise<Answer> {
  ctx.record.api = 'passthrough';
  const who = await ctx.pipeline.authenticate(credentials(ctx.call.metadata), ctx.record);
  const target = single(ctx.call.metadata, TARGET_METADATA);
  if (target === undefined || target === '') {
    throw new GrpcCoded(Code.UNIMPLEMENTED, `unknown method ${path}; to pass it through to a model's gRPC backend, name the model in ${TARGET_METADATA} metadata`);
  }
  // What the method needs (admin for repository, shared memory, trace, log settings, statistics)
  // and every model the message names, before anything is forwarded.
  const needs = passthroughNeeds(path, bytes);
  const model = ctx.pipeline.authorize(who, target, needs.permission, ctx.record);
  checkNamedModels(needs, model);
  const backend = ctx.pipeline.snapshot.backends[model.backend];
  // A proxy knows no backends (its broker checks); where the backend is known it must speak gRPC.
  const knownHere = Object.keys(ctx.pipeline.snapshot.backends).length > 0;
  if (knownHere && backend?.protocol !== 'kserve-v2-grpc') {
    throw new GrpcCoded(Code.UNIMPLEMENTED, `model "${model.name}" is served by backend "${model.backend}" (${backend?.protocol ?? 'unknown'}); gRPC pass-through needs a kserve-v2-grpc backend`);
  }
  checkSize(ctx, bytes, model);
  // The permission travels with the call, so a broker behind a proxy checks `admin` again.
  const call: InferenceCall = { ...neutralCall(ctx, 'passthrough', 'infer', model.name, 'POST', path, { 'content-type': GRPC_CONTENT_TYPE }, bytes), permission: needs.permission };
  const { reply, body } = await runCall(ctx, call, who);
  const r = splitReply(reply.headers);
  if (r.code !== Code.OK) return { failure: { code: r.code, details: r.details, metadata: r.trailers }, };
  return { value: body, initial: r.initial, trailers: r.trailers };
}

function serverLevel(ctx: Ctx, method: Method): Answer {
  ctx.record.api = 'kserve-v2';
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
    const started = performance.now();
    const id = requestId(call.metadata);
    const record = newRecord(id, 'grpc', started);
    record.source = sourceAddress(call.getPeer());
    const tracing = pipeline.snapshot.gateway.tracing;
    if (tracing) {
      const tp = call.metadata.get('traceparent')[0];
      record.trace = startTrace(typeof tp === 'string' ? tp : undefined, tracing.sampleRate);
    }
    const signal = new Cancel();
    let done = false;
    const finish = (code: number): boolean => {
      if (done) return false;
      done = true;
      record.status = code;
      pipeline.events.publish(record);
      return true;
    };
    call.on('cancelled', () => {
      if (done) return;
      signal.abort();
      record.outcome = 'CANCELLED';
      finish(Code.CANCELLED);
    });
    const fail = (err: unknown): void => {
      if (done) return;
      if (err instanceof CancelledError || signal.aborted) {
        record.outcome = 'CANCELLED';
        if (finish(Code.CANCELLED)) callback({ code: Code.CANCELLED, details: 'cancelled' });
        return;
      }
      const mg = toMGError(err);
      if (!isMGError(err)) console.error(`modelguard: gRPC request ${id} failed:`, err);
      record.outcome = mg.code;
      const f = errorStatus(mg, id, err instanceof GrpcCoded ? err.grpcCode : undefined);
      if (finish(f.code)) callback({ ...f, details: grpcDetails(f.details) });
    };
    const answer = (a: Answer): void => {
      if (done) return;
      if ('failure' in a) {
        a.failure.metadata.set('x-request-id', id);
        if (finish(a.failure.code)) callback({ ...a.failure, details: grpcDetails(a.failure.details) });
        return;
      }
      if (!finish(Code.OK)) return;
      const initial = a.initial ?? new Metadata();
      initial.set('x-request-id', id);
      if (record.servedBy) initial.set('x-modelguard-served-by', record.servedBy);
      call.sendMetadata(initial);
      callback(null, a.value, a.trailers);
    };
    try {
      // At the edge, before identity or decoding: metadata a model server would refuse, and a
      // deadline already gone (grpc-timeout 0, 1n), are answered here and never dispatched.
      checkMetadataSize(call.metadata);
      if (deadlineHasPassed(call.getDeadline())) throw deadlinePassed();
      const result = run({ pipeline, call, id, record, signal, started }, call.request);
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

/** Binds the server; resolves with a gRPC target `host:port` clients can dial. */
export function listenGrpc(server: Server, addr: string): Promise<string> {
  const { host, port } = parseListen(addr);
  const bind = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(bind, ServerCredentials.createInsecure(), (err, bound) => {
      if (err) return reject(new Error(`gRPC listener ${addr}: ${err.message}`));
      const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
      resolve(`${h}:${bound}`);
    });
  });
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
