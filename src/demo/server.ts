/**
 * The embedded demo model server: a real small model server on node:http that ModelGuard governs.
 * It speaks KServe v2 REST (`/v2`) and OpenAI-compatible REST (`/v1`), shares one (simulated)
 * accelerator among its models, and has test hooks: request recording, runtime service times,
 * injected faults, and stop/restart on the same port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Accelerator, type ModelCounters } from './accelerator.ts';
import { Timers, type DemoMode, type ServerContext } from './context.ts';
import { sendJson } from './http.ts';
import { handleKserve } from './kserve.ts';
import { identityModel, irisDemoModel, simulatedModel, type DemoModel } from './models.ts';
import { IRIS_MODEL_NAME, loadIrisModel } from './onnx/iris-model.ts';
import { handleOpenAI } from './openai.ts';
import { parseServiceTime, type ServiceTimeSpec } from './service-time.ts';
import type { Metadata, Server as GrpcServer } from '@grpc/grpc-js';
import { bindDemoGrpc, createDemoGrpcServer } from './grpc.ts';

export type { DemoMode } from './context.ts';

/** Injected failure: `garbage` answers 200 with a body that is not JSON, `error500` answers 500, `hang` never answers. */
export type FaultMode = 'none' | 'garbage' | 'error500' | 'hang';
/** Which requests a fault hits: every request (health checks too), or only inference (POST) requests. */
export type FaultScope = 'all' | 'inference';

export interface ModelSpec {
  readonly name: string;
  /** `simulated` (default): the deterministic FP32 summary; `identity`: answers every input unchanged (INPUTn → OUTPUTn). */
  readonly kind?: 'simulated' | 'identity';
  /** Defaults to the server-wide `serviceTime`. */
  readonly serviceTime?: ServiceTimeSpec;
}

export interface ModelServerOptions {
  /** Listen address. Default `127.0.0.1`. */
  readonly host?: string;
  /** Listen port; 0 picks a free one. Default 0. */
  readonly port?: number;
  /** `onnx` serves the real Iris model (plus any other models, simulated); `simulated` runs no real model. Default `simulated`. */
  readonly mode?: DemoMode;
  /** Accelerator slots shared by all models (requests running at once). Default 2. */
  readonly slots?: number;
  /** Models to serve. Default: `iris` in onnx mode, one model `demo` in simulated mode. Onnx mode always serves `iris`. */
  readonly models?: readonly (string | ModelSpec)[];
  /** Service time of models that do not set their own. Default 0 (a real model then takes its real compute time). */
  readonly serviceTime?: ServiceTimeSpec;
  /** Simulated generation time per output token on /v1, ms. Default 2. */
  readonly tokenMs?: number;
  /** Output tokens of a generation that max_tokens does not cut short. Default 16. */
  readonly completionTokens?: number;
  /** Seed of the service-time samplers. Default 1. */
  readonly seed?: number;
  /** Fault active from the start. Default `none`. */
  readonly fault?: FaultMode;
  /** Scope of `fault`. Default `all`. */
  readonly faultScope?: FaultScope;
  /** Where the Iris .onnx file is written. Default `os.tmpdir()/modelguard-demo`. */
  readonly cacheDir?: string;
  /** How many received requests `requests()` keeps (the newest). Default 1000. */
  readonly recordLimit?: number;
  /** Server name in `/v2` metadata and `/v1/models` `owned_by`. Default `modelguard-demo`. */
  readonly name?: string;
  /** Also serve KServe v2 gRPC on this port of `host` (0 picks a free one). Default: no gRPC listener. */
  readonly grpcPort?: number;
  /** Host of the gRPC listener. Default: `host`. */
  readonly grpcHost?: string;
}

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly requestId: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Date.now() at arrival. */
  readonly at: number;
}

export interface ModelServerStats {
  readonly mode: DemoMode;
  readonly slots: number;
  /** Requests holding a slot now. */
  readonly inService: number;
  /** Requests waiting in the server's FIFO line now. */
  readonly waiting: number;
  /** Most slots held at once. */
  readonly peakConcurrency: number;
  /** Requests received over HTTP and gRPC (all routes, faults included). */
  readonly requests: number;
  /** Per model: served, cancelled, failed, busyMs (accelerator time). */
  readonly models: Readonly<Record<string, ModelCounters>>;
}

export interface ModelServer {
  /** `http://host:port`, stable across stop/restart. */
  readonly url: string;
  /** `http://host:port` of the gRPC listener (the form a Backend endpoint takes), when there is one. */
  readonly grpcUrl: string | undefined;
  /** Port of the gRPC listener, when there is one. */
  readonly grpcPort: number | undefined;
  readonly host: string;
  readonly port: number;
  readonly mode: DemoMode;
  readonly models: readonly string[];
  readonly listening: boolean;
  stats(): ModelServerStats;
  /** Zeroes counters and peak, and forgets recorded requests and ids. */
  resetStats(): void;
  /** Every `x-request-id` received so far (a copy). */
  receivedIds(): Set<string>;
  /** The newest received requests (up to `recordLimit`), oldest first. */
  requests(): ReceivedRequest[];
  /** Changes a model's service time for requests that get a slot from now on. Throws on an unknown model or bad spec. */
  setServiceTime(model: string, spec: ServiceTimeSpec): void;
  setFault(mode: FaultMode, scope?: FaultScope): void;
  /** Stops listening, destroys open sockets and forgets in-flight work: a replica that died. */
  stop(): Promise<void>;
  /** Listens again on the same host and port. */
  restart(): Promise<void>;
  /** Stops for good. */
  close(): Promise<void>;
}

const GARBAGE_BODY = '{"model_name":"demo","outputs":[{"name":"output","data":[0.1,0.2,';

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

class DemoModelServer implements ModelServer {
  readonly host: string;
  readonly mode: DemoMode;
  readonly models: readonly string[];
  port: number;
  grpcPort: number | undefined;
  private readonly grpcHost: string;
  private grpcServer: GrpcServer | undefined;
  private server: Server | undefined;
  private closed = false;
  private readonly sockets = new Set<Socket>();
  private readonly ctx: ServerContext;
  private readonly modelMap: ReadonlyMap<string, DemoModel>;
  private fault: FaultMode;
  private faultScope: FaultScope;
  private requestCount = 0;
  private ids = new Set<string>();
  private log: ReceivedRequest[] = [];
  private logNext = 0;
  private readonly recordLimit: number;

  constructor(opts: ModelServerOptions, models: ReadonlyMap<string, DemoModel>, mode: DemoMode) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.grpcPort = opts.grpcPort;
    this.grpcHost = opts.grpcHost ?? this.host;
    this.mode = mode;
    this.modelMap = models;
    this.models = [...models.keys()];
    this.fault = opts.fault ?? 'none';
    this.faultScope = opts.faultScope ?? 'all';
    this.recordLimit = opts.recordLimit ?? 1000;
    let nextId = 0;
    this.ctx = {
      serverName: opts.name ?? 'modelguard-demo',
      serverVersion: '0.1.0',
      mode,
      models,
      accelerator: new Accelerator(opts.slots ?? 2),
      timers: new Timers(),
      tokenMs: opts.tokenMs ?? 2,
      completionTokens: opts.completionTokens ?? 16,
      nextId: () => `demo-${++nextId}`,
    };
    for (const name of this.models) this.ctx.accelerator.count(name);
  }

  get url(): string {
    return `http://${hostForUrl(this.host)}:${this.port}`;
  }

  get grpcUrl(): string | undefined {
    return this.grpcPort === undefined ? undefined : `http://${hostForUrl(this.grpcHost)}:${this.grpcPort}`;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  async listen(): Promise<void> {
    const server = createServer({ noDelay: true }, (req, res) => this.handle(req, res));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    if (this.grpcPort !== undefined) {
      // A fresh grpc-js server each time: one that was shut down cannot bind again.
      const grpc = createDemoGrpcServer(this.ctx, {
        received: (path, md) => this.receivedGrpc(path, md),
        fault: (isInference) => (this.fault !== 'none' && (this.faultScope === 'all' || isInference) ? this.fault : 'none'),
      });
      this.grpcPort = await bindDemoGrpc(grpc, this.grpcHost, this.grpcPort);
      this.grpcServer = grpc;
    }
  }

  private receivedGrpc(path: string, md: Metadata): void {
    this.requestCount++;
    const v = md.get('x-request-id')[0];
    const requestId = typeof v === 'string' ? v : undefined;
    if (requestId !== undefined) this.ids.add(requestId);
    const headers: Record<string, string> = {};
    for (const [k, value] of Object.entries(md.getMap())) headers[k] = typeof value === 'string' ? value : value.toString('base64');
    this.record({ method: 'POST', url: path, requestId, headers, at: Date.now() });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requestCount++;
    const header = req.headers['x-request-id'];
    const requestId = Array.isArray(header) ? header[0] : header;
    if (requestId !== undefined) {
      res.setHeader('x-request-id', requestId);
      this.ids.add(requestId);
    }
    this.record({ method: req.method ?? '', url: req.url ?? '', requestId, headers: req.headers, at: Date.now() });

    if (this.fault !== 'none' && (this.faultScope === 'all' || req.method === 'POST')) {
      req.resume();
      if (this.fault === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': GARBAGE_BODY.length });
        res.end(GARBAGE_BODY);
      } else if (this.fault === 'error500') {
        sendJson(res, 500, { error: 'injected fault: error500' });
      }
      return; // hang: no answer until the client gives up or the server stops
    }

    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const parts = (q < 0 ? url : url.slice(0, q)).split('/');
    if (parts[parts.length - 1] === '' && parts.length > 2) parts.pop();
    let decoded: string[];
    try {
      decoded = parts.map((p) => (p.includes('%') ? decodeURIComponent(p) : p));
    } catch {
      sendJson(res, 400, { error: 'malformed URL encoding' });
      return;
    }
    const [, root, ...rest] = decoded;
    if (root === 'v2') void handleKserve(this.ctx, req, res, rest, requestId);
    else if (root === 'v1') void handleOpenAI(this.ctx, req, res, rest, requestId);
    else if (root === '' && rest.length === 0) {
      sendJson(res, 200, { name: this.ctx.serverName, mode: this.mode, models: this.models, protocols: ['kserve-v2-http', 'openai'] });
    } else sendJson(res, 404, { error: `no route ${url}` });
  }

  private record(entry: ReceivedRequest): void {
    if (this.recordLimit <= 0) return;
    if (this.log.length < this.recordLimit) this.log.push(entry);
    else this.log[this.logNext] = entry;
    this.logNext = (this.logNext + 1) % this.recordLimit;
  }

  stats(): ModelServerStats {
    const a = this.ctx.accelerator.stats();
    return { mode: this.mode, slots: a.slots, inService: a.inService, waiting: a.waiting, peakConcurrency: a.peakConcurrency, requests: this.requestCount, models: a.models };
  }

  resetStats(): void {
    this.ctx.accelerator.resetStats();
    for (const name of this.models) this.ctx.accelerator.count(name);
    this.requestCount = 0;
    this.ids = new Set();
    this.log = [];
    this.logNext = 0;
  }

  receivedIds(): Set<string> {
    return new Set(this.ids);
  }

  requests(): ReceivedRequest[] {
    return this.log.length < this.recordLimit ? [...this.log] : [...this.log.slice(this.logNext), ...this.log.slice(0, this.logNext)];
  }

  setServiceTime(model: string, spec: ServiceTimeSpec): void {
    const m = this.modelMap.get(model);
    if (!m) throw new Error(`unknown model "${model}" (this server has ${this.models.join(', ')})`);
    m.serviceTime = parseServiceTime(spec);
  }

  setFault(mode: FaultMode, scope: FaultScope = 'all'): void {
    this.fault = mode;
    this.faultScope = scope;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.ctx.timers.clearAll();
    this.ctx.accelerator.reset();
    this.grpcServer?.forceShutdown();
    this.grpcServer = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  async restart(): Promise<void> {
    if (this.closed) throw new Error('model server was closed; start a new one');
    if (this.server) return;
    await this.listen();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.stop();
  }
}

function buildModels(opts: ModelServerOptions, mode: DemoMode, iris: Awaited<ReturnType<typeof loadIrisModel>> | undefined): Map<string, DemoModel> {
  const seed = opts.seed ?? 1;
  const fallback = parseServiceTime(opts.serviceTime ?? 0);
  const specs: ModelSpec[] = (opts.models ?? (mode === 'onnx' ? [IRIS_MODEL_NAME] : ['demo'])).map((m) => (typeof m === 'string' ? { name: m } : m));
  if (iris && !specs.some((s) => s.name === IRIS_MODEL_NAME)) specs.unshift({ name: IRIS_MODEL_NAME });
  const models = new Map<string, DemoModel>();
  for (const spec of specs) {
    if (spec.name === '' || spec.name.includes('/')) throw new Error(`invalid model name "${spec.name}"`);
    if (models.has(spec.name)) throw new Error(`model "${spec.name}" is listed twice`);
    const st = spec.serviceTime === undefined ? fallback : parseServiceTime(spec.serviceTime);
    models.set(spec.name, iris && spec.name === IRIS_MODEL_NAME ? irisDemoModel(iris, st, seed) : spec.kind === 'identity' ? identityModel(spec.name, st, seed) : simulatedModel(spec.name, st, seed));
  }
  if (models.size === 0) throw new Error('a model server needs at least one model');
  return models;
}

/** Starts a demo model server and resolves once it listens (in onnx mode, once the model is loaded). */
export async function startModelServer(opts: ModelServerOptions = {}): Promise<ModelServer> {
  const mode = opts.mode ?? 'simulated';
  if (mode !== 'onnx' && mode !== 'simulated') throw new Error(`mode must be onnx or simulated, got "${String(mode)}"`);
  for (const [key, value] of [['tokenMs', opts.tokenMs], ['completionTokens', opts.completionTokens]] as const) {
    if (value !== undefined && (!Number.isFinite(value) || value < 0)) throw new Error(`${key} must be a number ≥ 0`);
  }
  const iris = mode === 'onnx' ? await loadIrisModel(opts.cacheDir) : undefined;
  const server = new DemoModelServer(opts, buildModels(opts, mode, iris), mode);
  await server.listen();
  return server;
}
