/**
 * Composition root for one box: broker + pipeline + HTTP, gRPC and MQTT ingress + admin listener.
 * Holds no logic: it builds the parts from a snapshot, wires them, and exposes reload and close.
 */
import type { Server } from 'node:http';
import type { Snapshot } from '../core/snapshot.ts';
import { Broker } from '../broker/broker.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { createHttpServer } from '../adapters/http/server.ts';
import type { MqttIngress } from '../adapters/mqtt/ingress.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { AccessLog } from '../observability/access-log.ts';
import type { LiveFeed } from '../observability/live.ts';
import type { Tracer } from '../observability/tracing.ts';
import { bound, closeServer, listen } from '../net/listen.ts';
import { observe } from './observe.ts';
import { listenerPort, startTrafficQos, type TrafficQos } from '../qos/index.ts';

export interface GatewayOptions {
  /** Override listener addresses (tests use 127.0.0.1:0). */
  readonly http?: string;
  /** gRPC listener override, like `http`. */
  readonly grpc?: string;
  readonly admin?: string;
  /** Override the MQTT URL (tests: mqtt://127.0.0.1:0 for an embedded broker, or their own mosquitto). */
  readonly mqtt?: string;
  /**
   * Called when the MQTT ingress cannot start (the embedded broker's port is taken); the gateway
   * then runs without MQTT. Without it, startGateway fails.
   */
  readonly onMqttError?: (err: Error) => void;
  /** Where traffic QoS reports what it installed or why it is off (default stderr). */
  readonly qosLog?: (line: string) => void;
}

export interface Gateway {
  readonly httpUrl: string;
  /** gRPC target `host:port` of the inference gRPC listener. */
  readonly grpcUrl: string;
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
  /** Uplink shaping by the kernel (Gateway.spec.trafficQoS). */
  readonly qos: TrafficQos;
  /** Swaps configuration without dropping queued or in-flight work. */
  reload(next: Snapshot): void;
  close(): Promise<void>;
}

export async function startGateway(snapshot: Snapshot, opts: GatewayOptions = {}): Promise<Gateway> {
  const broker = new Broker(snapshot);
  const pipeline = new Pipeline(broker);
  const obs = observe(pipeline);
  const httpServer: Server = createHttpServer(pipeline);
  // Protocol stacks are loaded when configured (docs/build.md, "What each role loads").
  // gRPC: its port now, its stack with the first gRPC client (adapters/grpc/listener.ts).
  const { GrpcListener } = await import('../adapters/grpc/listener.ts');
  const grpc = new GrpcListener(pipeline);
  broker.start();
  let mqtt: MqttIngress | undefined;
  const close = async (): Promise<void> => {
    obs.closeStreams(); // ends the dashboards' event streams, so the admin listener closes at once
    await mqtt?.close(); // stops taking MQTT requests and lets those in flight answer
    const servers = [httpServer, obs.adminServer].filter((s) => s.listening);
    await Promise.all([...servers.map((s) => closeServer(s)), grpc.close()]);
    await obs.close();
    await broker.close();
  };
  let httpUrl: string;
  let adminUrl: string;
  let grpcUrl: string;
  try {
    httpUrl = await listen(httpServer, opts.http ?? snapshot.gateway.listeners.http, 'http');
    adminUrl = await listen(obs.adminServer, opts.admin ?? snapshot.gateway.listeners.admin, 'admin');
    const grpcAddr = opts.grpc ?? snapshot.gateway.listeners.grpc;
    grpcUrl = await grpc.start(grpcAddr);
  } catch (err) {
    await close();
    throw err;
  }
  const mqttCfg = snapshot.gateway.mqtt;
  if (mqttCfg) {
    try {
      const url = opts.mqtt ?? mqttCfg.url;
      const [{ startMqttIngress }, { registerMqttMetrics }] = await Promise.all([import('../adapters/mqtt/ingress.ts'), import('../observability/mqtt-metrics.ts')]);
      mqtt = await bound('mqtt', url, () => startMqttIngress(pipeline, mqttCfg, url));
      registerMqttMetrics(obs.metrics.registry, mqtt);
    } catch (err) {
      if (!opts.onMqttError) {
        await close();
        throw err;
      }
      opts.onMqttError(err as Error);
    }
  }
  const ports = {
    http: listenerPort(opts.http ?? snapshot.gateway.listeners.http, httpUrl),
    grpc: listenerPort(opts.grpc ?? snapshot.gateway.listeners.grpc, grpcUrl),
    mqtt: mqtt?.embedded ? listenerPort(opts.mqtt ?? mqttCfg?.url ?? '', mqtt.url) : undefined,
  };
  const qos = await startTrafficQos(snapshot, ports, obs.metrics.registry, opts.qosLog ? { log: opts.qosLog } : {});
  return {
    httpUrl,
    grpcUrl,
    adminUrl,
    mqttUrl: mqtt?.url,
    mqtt,
    broker,
    pipeline,
    metrics: obs.metrics,
    live: obs.live,
    accessLog: obs.accessLog,
    tracer: obs.tracer,
    qos,
    reload: (next) => {
      pipeline.apply(next);
      obs.reload(next);
      void qos.apply(next);
    },
    close: async () => {
      await close();
      await qos.stop(); // last: answers still in flight keep their priority until the listeners are closed
    },
  };
}
