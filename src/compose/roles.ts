/**
 * Composition roots for the separate roles (docs/deployment.md): a broker alone (the data plane of
 * one node, taking calls from proxies on its broker listener, and from devices over MQTT) and a
 * proxy (an app's sidecar, or a shared gateway, taking HTTP and gRPC and forwarding to its broker).
 * `startGateway` is the all-in-one.
 */
import type { Server } from 'node:http';
import type { Snapshot } from '../core/snapshot.ts';
import type { Broker } from '../broker/broker.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { createHttpServer } from '../adapters/http/server.ts';
import type { MqttIngress } from '../adapters/mqtt/ingress.ts';
import type { ListenerTls } from '../link/tls.ts';
import type { LinkClientTls, RemoteBroker } from '../link/remote.ts';
import { bound, closeServer, listen, type ListenerKind } from '../net/listen.ts';
import { adminAddress } from './admin-address.ts';
import { observe, type Observers } from './observe.ts';
import type { TrafficQos } from '../qos/index.ts';

export interface Role {
  readonly pipeline: Pipeline;
  readonly observers: Observers;
  readonly adminUrl: string;
  /** The current configuration. */
  readonly current: Snapshot;
  /** Swaps configuration without dropping queued or in-flight work. */
  reload(next: Snapshot): void;
  close(): Promise<void>;
}

export interface BrokerRole extends Role {
  readonly broker: Broker;
  /** Where proxies send calls. */
  readonly linkUrl: string;
  /** Where devices connect, when the configuration has MQTT. */
  readonly mqttUrl: string | undefined;
  /** Reads the brokerTls files again (SIGHUP); undefined on a plain HTTP broker listener. */
  readonly tls: ListenerTls | undefined;
  /** Uplink shaping by the kernel (Gateway.spec.trafficQoS). */
  readonly qos: TrafficQos;
}

export interface ProxyRole extends Role {
  readonly remote: RemoteBroker;
  readonly httpUrl: string;
  /** gRPC target `host:port`. */
  readonly grpcUrl: string;
}

/** Something a role listens with: bound in order at start, closed together at the end. */
interface Listener {
  start(): Promise<string>;
  close(): Promise<void>;
}

function httpListener(server: Server, addr: string, kind: ListenerKind): Listener {
  return { start: () => listen(server, addr, kind), close: () => (server.listening ? closeServer(server) : Promise.resolve()) };
}

/** The broker listener; with brokerTls an https:// URL, and its files followed while it listens. */
function linkListener(server: Server, addr: string, tls: ListenerTls | undefined, watchMs: number | undefined): Listener {
  const plain = httpListener(server, addr, 'broker');
  if (tls === undefined) return plain;
  return {
    start: async () => {
      const url = await plain.start();
      tls.watch(watchMs);
      return url.replace(/^http:/, 'https:');
    },
    close: () => {
      tls.unwatch();
      return plain.close();
    },
  };
}

async function compose(
  plane: Broker | RemoteBroker,
  listeners: (pipeline: Pipeline) => Listener[],
  admin: string,
): Promise<{ pipeline: Pipeline; observers: Observers; adminUrl: string; urls: string[]; reload: (next: Snapshot) => void; close: () => Promise<void> }> {
  const pipeline = new Pipeline(plane);
  const observers = observe(pipeline);
  const own = listeners(pipeline);
  const adminListener = httpListener(observers.adminServer, admin, 'admin');
  plane.start();
  const closeAll = async (): Promise<void> => {
    observers.closeStreams();
    await Promise.all([...own, adminListener].map((l) => l.close()));
    await observers.close();
    await plane.close();
  };
  try {
    const urls: string[] = [];
    for (const l of own) urls.push(await l.start());
    const adminUrl = await adminListener.start();
    return {
      pipeline,
      observers,
      adminUrl,
      urls,
      reload: (next) => {
        pipeline.apply(next);
        observers.reload(next);
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export interface BrokerOptions {
  /** Broker listener (default the Gateway's `listeners.broker`). */
  readonly listen?: string;
  readonly admin?: string;
  /** MQTT URL override (tests: mqtt://127.0.0.1:0 for the embedded broker). */
  readonly mqtt?: string;
  /** How often the brokerTls files are checked for changes, ms (default 2000). */
  readonly tlsWatchMs?: number;
  /** Where traffic QoS reports what it installed or why it is off (default stderr). */
  readonly qosLog?: (line: string) => void;
}

export async function startBroker(snapshot: Snapshot, opts: BrokerOptions = {}): Promise<BrokerRole> {
  // Each role loads its own data plane: a proxy never loads the broker's queues, link listener or traffic QoS.
  const [{ Broker }, { createLinkServer }, { ListenerTls, checkTlsSwitch, readBrokerTls }, { listenerPort, startTrafficQos }] = await Promise.all([
    import('../broker/broker.ts'),
    import('../adapters/link/server.ts'),
    import('../link/tls.ts'),
    import('../qos/index.ts'),
  ]);
  // Read first: unreadable or mismatched files stop the start before anything runs.
  const tlsCfg = snapshot.gateway.brokerTls;
  const tlsFiles = tlsCfg === undefined ? undefined : readBrokerTls(tlsCfg);
  const broker = new Broker(snapshot);
  let mqtt: MqttIngress | undefined;
  let tls: ListenerTls | undefined;
  const mqttCfg = snapshot.gateway.mqtt;
  // MQTT (aedes or the mqtt client) is loaded only when the configuration has it.
  const mqttIngress = mqttCfg ? await import('../adapters/mqtt/ingress.ts') : undefined;
  const c = await compose(
    broker,
    (pipeline) => {
      const link = createLinkServer(pipeline, tlsFiles);
      if (tlsCfg !== undefined && tlsFiles !== undefined) tls = new ListenerTls(link, tlsCfg, tlsFiles);
      const own = [linkListener(link, opts.listen ?? snapshot.gateway.listeners.broker, tls, opts.tlsWatchMs)];
      // Devices reach the node's queues directly: MQTT belongs to the broker, not to app sidecars.
      if (mqttCfg && mqttIngress) {
        own.push({
          start: async () => {
            const url = opts.mqtt ?? mqttCfg.url;
            mqtt = await bound('mqtt', url, () => mqttIngress.startMqttIngress(pipeline, mqttCfg, url));
            return mqtt.url;
          },
          close: async () => mqtt?.close(),
        });
      }
      return own;
    },
    opts.admin ?? adminAddress(snapshot.gateway, 'broker'),
  );
  const ports = {
    broker: listenerPort(opts.listen ?? snapshot.gateway.listeners.broker, c.urls[0]),
    mqtt: mqtt?.embedded ? listenerPort(opts.mqtt ?? mqttCfg?.url ?? '', mqtt.url) : undefined,
  };
  const qos = await startTrafficQos(snapshot, ports, c.observers.metrics.registry, opts.qosLog ? { log: opts.qosLog } : {});
  return {
    broker,
    pipeline: c.pipeline,
    observers: c.observers,
    adminUrl: c.adminUrl,
    linkUrl: c.urls[0] as string,
    mqttUrl: c.urls[1],
    tls,
    qos,
    get current() {
      return broker.current;
    },
    reload: (next) => {
      // New certificate files are read (and refused) before anything else changes.
      checkTlsSwitch(broker.current.gateway.brokerTls, next.gateway.brokerTls);
      const install = next.gateway.brokerTls ? tls?.prepare(next.gateway.brokerTls) : undefined;
      c.reload(next);
      install?.();
      void qos.apply(next);
    },
    close: async () => {
      await c.close();
      await qos.stop();
    },
  };
}

export interface ProxyOptions {
  /** Broker listener URL. */
  readonly broker: string;
  /** This proxy's token; optional when `tls` gives a certificate that identifies it. */
  readonly token?: string;
  /** Client certificate for an https:// broker listener (Gateway.spec.brokerTls). */
  readonly tls?: LinkClientTls;
  readonly http?: string;
  readonly grpc?: string;
  readonly admin?: string;
}

export async function startProxy(snapshot: Snapshot, opts: ProxyOptions): Promise<ProxyRole> {
  const [{ GrpcListener }, { RemoteBroker }] = await Promise.all([import('../adapters/grpc/listener.ts'), import('../link/remote.ts')]);
  const remote = new RemoteBroker(snapshot, { url: opts.broker, ...(opts.token === undefined ? {} : { token: opts.token }), ...(opts.tls === undefined ? {} : { tls: opts.tls }) });
  const c = await compose(
    remote,
    (pipeline) => {
      const grpc = new GrpcListener(pipeline);
      return [
        httpListener(createHttpServer(pipeline), opts.http ?? snapshot.gateway.listeners.http, 'http'),
        { start: () => grpc.start(opts.grpc ?? snapshot.gateway.listeners.grpc), close: () => grpc.close() },
      ];
    },
    opts.admin ?? adminAddress(snapshot.gateway, 'proxy'),
  );
  return {
    remote,
    pipeline: c.pipeline,
    observers: c.observers,
    adminUrl: c.adminUrl,
    httpUrl: c.urls[0] as string,
    grpcUrl: c.urls[1] as string,
    get current() {
      return remote.current;
    },
    reload: c.reload,
    close: c.close,
  };
}
