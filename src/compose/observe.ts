/**
 * The observers every role runs beside its pipeline: metrics, the live window, access log, audit and
 * traces, all fed by the pipeline's request events, plus the admin listener that serves them.
 */
import type { Server } from 'node:http';
import type { Snapshot } from '../core/snapshot.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import { createAdminServer } from '../admin/server.ts';
import { Metrics } from '../observability/metrics.ts';
import { AccessLog } from '../observability/access-log.ts';
import { LiveFeed } from '../observability/live.ts';
import { AuditLog } from '../security/audit.ts';
import { Tracer } from '../observability/tracing.ts';
import { RemoteWriter } from '../observability/remote-write.ts';

export interface Observers {
  readonly metrics: Metrics;
  readonly live: LiveFeed;
  readonly accessLog: AccessLog;
  readonly tracer: Tracer;
  /** Pushes the metrics to a Prometheus remote-write endpoint while one is configured. */
  readonly remoteWrite: RemoteWriter;
  readonly adminServer: Server;
  reload(next: Snapshot): void;
  /** Ends the dashboards' event streams (so the admin listener closes at once). */
  closeStreams(): void;
  close(): Promise<void>;
}

export function observe(pipeline: Pipeline): Observers {
  const plane = pipeline.broker;
  const snapshot = plane.current;
  const metrics = new Metrics(plane, pipeline.events);
  const live = new LiveFeed(plane, pipeline.events);
  const accessLog = new AccessLog(pipeline.events, snapshot.gateway.accessLog);
  // The audit destination is read at start; a reload changes keys and grants, not where audit goes.
  const audit = snapshot.gateway.audit ? new AuditLog(snapshot.gateway.audit, pipeline.events) : undefined;
  // Always subscribed: requests carry a trace context only while the current snapshot enables tracing.
  const tracer = new Tracer(pipeline.events, () => plane.current.gateway.tracing);
  const adminServer = createAdminServer(plane, metrics, live);
  const remoteWrite = new RemoteWriter(metrics.registry, snapshot.gateway.metrics?.remoteWrite);
  return {
    metrics,
    live,
    accessLog,
    tracer,
    remoteWrite,
    adminServer,
    reload: (next) => {
      void accessLog.configure(next.gateway.accessLog);
      remoteWrite.configure(next.gateway.metrics?.remoteWrite);
    },
    closeStreams: () => live.close(),
    async close() {
      await remoteWrite.close();
      metrics.close();
      await accessLog.close();
      audit?.close();
      await tracer.close();
    },
  };
}
