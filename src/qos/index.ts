/**
 * Traffic QoS (docs/traffic-qos.md): the host kernel shapes the uplink so that ModelGuard's inference
 * traffic goes ahead of bulk. The composition roots call `startTrafficQos`; `modelguard qos plan`
 * uses the planner directly.
 */
import type { Registry } from '../core/prom.ts';
import type { Snapshot } from '../core/snapshot.ts';
import { TrafficQos, type TrafficQosOptions } from './applier.ts';
import { registerQosMetrics } from './metrics.ts';
import type { ListenerPorts } from './targets.ts';

export { TrafficQos } from './applier.ts';
export type { QosStatus, QosClassCounters } from './contract.ts';

const LOOPBACK = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

/** The host of `host:port`, `[v6]:port` or a URL. */
function hostOf(address: string): string {
  const m = /^(?:[a-z]+:\/\/)?(?:\[([^\]]+)\]|([^:/]*))(?::\d+)?/i.exec(address);
  return m?.[1] ?? m?.[2] ?? '';
}

/**
 * The port a listener is bound to, from the address it was configured with (`0.0.0.0:8080`, or a
 * URL) and the URL it reports after binding (which names 127.0.0.1 for a wildcard and the real port
 * for port 0). Undefined for a loopback listener: its answers never cross the uplink.
 */
export function listenerPort(configured: string, bound: string | undefined): number | undefined {
  if (bound === undefined || LOOPBACK(hostOf(configured))) return undefined;
  const port = /:(\d+)\/?$/.exec(bound)?.[1];
  return port === undefined ? undefined : Number(port);
}

/**
 * Creates the applier, applies the first snapshot (a no-op without trafficQoS) and registers its
 * metrics. Never fails: a QoS that cannot be installed says why and the gateway runs without it.
 */
export async function startTrafficQos(snapshot: Snapshot, ports: ListenerPorts, registry: Registry, opts: Omit<TrafficQosOptions, 'ports'> = {}): Promise<TrafficQos> {
  const qos = new TrafficQos({ ...opts, ports });
  await qos.apply(snapshot);
  registerQosMetrics(registry, qos);
  return qos;
}
