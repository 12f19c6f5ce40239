/**
 * Composition root for one box: broker + pipeline + HTTP ingress + admin listener. Holds no logic:
 * it builds the parts from a snapshot, wires them, and exposes start, reload and close.
 */
import type { Server } from 'node:http';
import type { Snapshot } from '../core/snapshot.ts';
import { Broker } from '../broker/broker.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { createHttpServer } from '../adapters/http/server.ts';
import { createAdminServer } from '../admin/server.ts';
import { Metrics } from '../observability/metrics.ts';
import { AccessLog } from '../observability/access-log.ts';
import { LiveFeed } from '../observability/live.ts';
import { AuditLog } from '../security/audit.ts';
import { Tracer } from '../observability/tracing.ts';
import { closeServer, listen } from './listen.ts';
import { startMqttIngress, type MqttIngress } from '../adapters/mqtt/ingress.ts';
import { registerMqttMetrics } from '../observability/mqtt-metrics.ts';

export interface GatewayOptions {
  /** Override listener addresses (tests use 127.0.0.1:0). */
  readonly http?: string;
  readonly admin?: string;
  /** Override the MQTT URL (tests: mqtt://127.0.0.1:0 for an embedded broker, or their own mosquitto). */
  readonly mqtt?: string;
  /**
   * Called when the MQTT ingress cannot start (the embedded broker's port is taken); the gateway
   * then runs without MQTT. Without it, startGateway fails.
   */
  readonly onMqttError?: (err: Error) => void;
}

export interface Gateway {
  readonly httpUrl: string;
  readonly adminUrl: string;
  /** Where MQTT devices connect (the embedded broker's bound URL), or undefined without MQTT. */
  readonly mqttUrl: string | undefined;
  readonly mqtt: MqttIngress | undefined;
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
  broker.start();
  const httpUrl = await listen(httpServer, opts.http ?? snapshot.gateway.listeners.http);
  const adminUrl = await listen(adminServer, opts.admin ?? snapshot.gateway.listeners.admin);
  let mqtt: MqttIngress | undefined;
  const close = async (): Promise<void> => {
    live.close(); // ends the dashboards' event streams, so the admin listener closes at once
    await mqtt?.close(); // stops taking MQTT requests and lets those in flight answer
    await Promise.all([closeServer(httpServer), closeServer(adminServer)]);
    metrics.close();
    await accessLog.close();
    audit?.close();
    await tracer.close();
    await broker.close();
  };
  const mqttCfg = snapshot.gateway.mqtt;
  if (mqttCfg) {
    try {
      mqtt = await startMqttIngress(pipeline, mqttCfg, opts.mqtt ?? mqttCfg.url);
      registerMqttMetrics(metrics.registry, mqtt);
    } catch (err) {
      if (!opts.onMqttError) {
        await close();
        throw err;
      }
      opts.onMqttError(err as Error);
    }
  }
  return {
    httpUrl,
    adminUrl,
    mqttUrl: mqtt?.url,
    mqtt,
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
    close,
  };
}
