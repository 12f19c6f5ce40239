/**
 * Composition root for one box: broker + pipeline + HTTP ingress + admin listener. Holds no logic:
 * it builds the parts from a snapshot, wires them, and exposes start, reload and close.
 */
import type { Server } from 'node:http';
import type { Snapshot } from '../core/snapshot.ts';
import { Broker } from '../broker/broker.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { createHttpServer } from '../adapters/http/server.ts';
import { closeGrpc, createGrpcServer, listenGrpc } from '../adapters/grpc/server.ts';
import { createAdminServer } from '../admin/server.ts';
import { Metrics } from '../observability/metrics.ts';
import { AccessLog } from '../observability/access-log.ts';
import { LiveFeed } from '../observability/live.ts';
import { AuditLog } from '../security/audit.ts';
import { Tracer } from '../observability/tracing.ts';
import { closeServer, listen } from './listen.ts';

export interface GatewayOptions {
  /** Override listener addresses (tests use 127.0.0.1:0). */
  readonly http?: string;
  /** gRPC listener override, like `http`. */
  readonly grpc?: string;
  readonly admin?: string;
}

export interface Gateway {
  readonly httpUrl: string;
  /** gRPC target `host:port` of the inference gRPC listener. */
  readonly grpcUrl: string;
  readonly adminUrl: string;
  readonly broker: Broker;
  readonly pipeline: Pipeline;
  readonly metrics: Metrics;
  /** The recent window behind the dashboard and `modelguard top`. */
  readonly live: LiveFeed;
  readonly accessLog: AccessLog;
  readonly tracer: Tracer;
  /** Swaps configuration without dropping queued or in-flight work. */
  reload(next: Snapshot): void;
  close(): Promise<void>;
}

export async function startGateway(snapshot: Snapshot, opts: GatewayOptions = {}): Promise<Gateway> {
  const broker = new Broker(snapshot);
  const pipeline = new Pipeline(broker);
  const metrics = new Metrics(broker, pipeline.events);
  const live = new LiveFeed(broker, pipeline.events);
  const accessLog = new AccessLog(pipeline.events, snapshot.gateway.accessLog);
  // The audit destination is read at start; a reload changes keys and grants, not where audit goes.
  const audit = snapshot.gateway.audit ? new AuditLog(snapshot.gateway.audit, pipeline.events) : undefined;
  // Always subscribed: requests carry a trace context only while the current snapshot enables tracing.
  const tracer = new Tracer(pipeline.events, () => broker.current.gateway.tracing);
  const httpServer: Server = createHttpServer(pipeline);
  const adminServer: Server = createAdminServer(broker, metrics, live);
  const grpc = createGrpcServer(pipeline);
  broker.start();
  const httpUrl = await listen(httpServer, opts.http ?? snapshot.gateway.listeners.http);
  const adminUrl = await listen(adminServer, opts.admin ?? snapshot.gateway.listeners.admin);
  const grpcUrl = await listenGrpc(grpc.server, opts.grpc ?? snapshot.gateway.listeners.grpc);
  return {
    httpUrl,
    grpcUrl,
    adminUrl,
    broker,
    pipeline,
    metrics,
    live,
    accessLog,
    tracer,
    reload: (next) => {
      pipeline.apply(next);
      void accessLog.configure(next.gateway.accessLog);
    },
    async close() {
      live.close(); // ends the dashboards' event streams, so the admin listener closes at once
      await Promise.all([closeServer(httpServer), closeServer(adminServer), closeGrpc(grpc.server)]);
      metrics.close();
      await accessLog.close();
      audit?.close();
      await tracer.close();
      await broker.close();
    },
  };
}
