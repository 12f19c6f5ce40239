/**
 * KServe v2 gRPC backend client: one channel per endpoint, reused by every call (HTTP/2 multiplexes
 * them). The neutral request is HTTP-shaped (KServe v2 REST paths and JSON bodies); this client maps
 * each path to its RPC and translates bodies both ways, so an HTTP client reaches a gRPC backend.
 * Raw gRPC calls (pass-through) go out unchanged.
 *
 *   GET  /v2                         → ServerMetadata
 *   GET  /v2/health/live | ready     → ServerLive | ServerReady
 *   GET  /v2/models/{m}[/versions/v] → ModelMetadata        (…/ready → ModelReady)
 *   POST /v2/models/{m}[/versions/v]/infer → ModelInfer
 *   content-type application/grpc    → the path as a method, bytes as they are
 */
import { Metadata } from '@grpc/grpc-js';
import { Code, httpStatusFor } from '../../core/grpc-status.ts';
import type { BackendClient, BackendRequest, BackendResponse } from '../client.ts';
import { ConnectionFailure, RequestRejected } from '../client.ts';
import { NOT_FORWARDED } from '../../core/headers.ts';
import { modelPathTail } from '../../core/kserve.ts';
import { inferRequestFromJson, inferResponseToRest, modelMetadataToJson, NO_BINARY, NotJsonTensor, WireError, type BinaryOutputs } from '../../grpc/kserve.ts';
import { addToMetadata, isGrpcPassthrough, replyHeaders } from '../../grpc/passthrough.ts';
import { methodPath, wire, type Method } from '../../grpc/wire.ts';
import { H2Channel, type UnaryResult } from './h2-unary.ts';


/** Headers that are HTTP's, not metadata a gRPC backend should see. */
const NOT_METADATA = new Set(['content-type', 'content-length', 'host', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'user-agent', 'accept', 'accept-encoding', 'inference-header-content-length', 'expect']);

interface Route {
  readonly method: Method;
  readonly model?: string;
  readonly version?: string;
}

/** Which RPC a KServe v2 REST request is; undefined for paths the gRPC API has no counterpart for. */
export function routeOf(httpMethod: string, rawPath: string): Route | undefined {
  const q = rawPath.indexOf('?');
  const parts = (q < 0 ? rawPath : rawPath.slice(0, q)).split('/').slice(1);
  if (parts[parts.length - 1] === '') parts.pop();
  let seg: string[];
  try {
    seg = parts.map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (seg[0] !== 'v2') return undefined;
  const get = httpMethod === 'GET' || httpMethod === 'HEAD';
  if (seg.length === 1 && get) return { method: 'ServerMetadata' };
  if (seg[1] === 'health' && seg.length === 3 && get) {
    if (seg[2] === 'live') return { method: 'ServerLive' };
    if (seg[2] === 'ready') return { method: 'ServerReady' };
  }
  if (seg[1] !== 'models' || !seg[2]) return undefined;
  const model = seg[2];
  const { version, tail } = modelPathTail(seg, 3);
  const v = version === undefined ? {} : { version };
  if (tail.length === 0 && get) return { method: 'ModelMetadata', model, ...v };
  if (tail.length === 1 && tail[0] === 'ready' && get) return { method: 'ModelReady', model, ...v };
  if (tail.length === 1 && tail[0] === 'infer' && httpMethod === 'POST') return { method: 'ModelInfer', model, ...v };
  return undefined;
}


function jsonResponse(status: number, doc: unknown, extra: Record<string, string> = {}): BackendResponse {
  const body = Buffer.from(JSON.stringify(doc));
  return { status, headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...extra }, body };
}

/** The gRPC target (`host:port`) of an endpoint URL (`http://host:port`, or https for TLS). */
export function grpcTarget(url: string): { target: string; tls: boolean } {
  const u = new URL(url);
  const tls = u.protocol === 'https:';
  return { target: `${u.hostname}:${u.port || (tls ? '443' : '80')}`, tls };
}

export class GrpcBackendClient implements BackendClient {
  private readonly channel: H2Channel;

  constructor(readonly url: string) {
    const { target, tls } = grpcTarget(url);
    // One HTTP/2 session per endpoint, reconnected lazily (health probes decide when it is used).
    this.channel = new H2Channel(`${tls ? 'https' : 'http'}://${target}`);
  }

  private unary(path: string, body: Buffer, md: Metadata, signal: BackendRequest['signal'] | undefined, deadline?: number): Promise<UnaryResult> {
    return this.channel.unary(path, body, md, signal, deadline);
  }

  async request(req: BackendRequest): Promise<BackendResponse> {
    if (req.signal.aborted) throw new Error('cancelled');
    const md = new Metadata();
    try {
      for (const [k, v] of Object.entries(req.headers)) if (!NOT_METADATA.has(k) && !NOT_FORWARDED.has(k)) addToMetadata(md, k, v);
    } catch (err) {
      throw new RequestRejected(`metadata cannot be sent: ${(err as Error).message}`, { cause: err });
    }
    if (isGrpcPassthrough(req.headers)) {
      const r = await this.unary(req.path, req.body ?? Buffer.alloc(0), md, req.signal);
      this.refused(r);
      return { status: 200, headers: replyHeaders(r.code, r.details, r.initial, r.trailers), body: r.value ?? Buffer.alloc(0) };
    }
    const route = routeOf(req.method, req.path);
    if (!route) return jsonResponse(404, { error: `a KServe v2 gRPC backend has no counterpart for ${req.method} ${req.path}` });
    let message: Buffer;
    let binary = NO_BINARY;
    try {
      ({ message, binary } = this.encodeRequest(route, req));
    } catch (err) {
      if (err instanceof WireError) return jsonResponse(400, { error: `KServe v2 infer: ${err.message}` });
      throw err;
    }
    const r = await this.unary(methodPath(route.method), message, md, req.signal);
    this.refused(r);
    if (r.code !== Code.OK) return jsonResponse(httpStatusFor(r.code), { error: r.details || `backend answered gRPC status ${r.code}` }, { 'x-grpc-status': String(r.code) });
    try {
      if (route.method === 'ModelInfer') {
        const rest = inferResponseToRest(wire.ModelInferResponse.decode(r.value ?? Buffer.alloc(0)), binary);
        return { status: 200, headers: { ...rest.headers, 'content-length': String(rest.body.length) }, body: rest.body };
      }
      return jsonResponse(200, this.decodeResponse(route, r.value ?? Buffer.alloc(0)));
    } catch (err) {
      // A valid answer the client asked for in a form that cannot carry it (NaN as JSON): the request's
      // form is at fault, not the backend.
      if (err instanceof NotJsonTensor) return jsonResponse(400, { error: `KServe v2 infer: ${err.message}` }, { 'x-modelguard-error': 'MG_BAD_REQUEST' });
      // The backend's answer is not what the protocol promises: a backend failure, not the client's.
      return jsonResponse(502, { error: `gRPC backend answer for ${route.method}: ${(err as Error).message}` });
    }
  }

  /** UNAVAILABLE before any answer: nothing reached the model, so another replica may take it. */
  private refused(r: UnaryResult): void {
    if (r.code === Code.UNAVAILABLE && r.initial === undefined) throw new ConnectionFailure(`${this.url}: gRPC UNAVAILABLE: ${r.details}`);
  }

  private encodeRequest(route: Route, req: BackendRequest): { message: Buffer; binary: BinaryOutputs } {
    const ref = { name: route.model ?? '', version: route.version ?? '' };
    switch (route.method) {
      case 'ModelInfer': {
        const h = req.headers['inference-header-content-length'];
        const headerLength = h === undefined ? undefined : Number(h);
        return inferRequestFromJson(req.body ?? Buffer.alloc(0), headerLength, ref.name, route.version);
      }
      case 'ModelMetadata': return { message: wire.ModelMetadataRequest.encode(ref), binary: NO_BINARY };
      case 'ModelReady': return { message: wire.ModelReadyRequest.encode(ref), binary: NO_BINARY };
      default: return { message: Buffer.alloc(0), binary: NO_BINARY };
    }
  }

  private decodeResponse(route: Route, value: Buffer): unknown {
    switch (route.method) {
      case 'ModelMetadata': return modelMetadataToJson(wire.ModelMetadataResponse.decode(value));
      case 'ModelReady': return { name: route.model, ready: wire.ModelReadyResponse.decode(value).ready };
      case 'ServerReady': return { ready: wire.ServerReadyResponse.decode(value).ready };
      case 'ServerLive': return { live: wire.ServerLiveResponse.decode(value).live };
      case 'ServerMetadata': {
        const m = wire.ServerMetadataResponse.decode(value);
        return { name: m.name, version: m.version, extensions: [...m.extensions] };
      }
    }
  }

  async probe(path: string, timeoutMs: number): Promise<boolean> {
    const route = routeOf('GET', path) ?? { method: 'ServerReady' as const };
    const message = route.method === 'ModelReady' ? wire.ModelReadyRequest.encode({ name: route.model ?? '', version: route.version ?? '' }) : Buffer.alloc(0);
    try {
      const r = await this.unary(methodPath(route.method), message, new Metadata(), undefined, Date.now() + timeoutMs);
      if (r.code !== Code.OK || !r.value) return false;
      if (route.method === 'ModelReady') return wire.ModelReadyResponse.decode(r.value).ready;
      if (route.method === 'ServerReady') return wire.ServerReadyResponse.decode(r.value).ready;
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    this.channel.close();
    return Promise.resolve();
  }
}
