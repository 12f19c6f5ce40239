/**
 * Traffic QoS (docs/traffic-qos.md): the host kernel shapes the uplink so that ModelGuard's inference
 * traffic goes ahead of bulk. The composition roots call `startTrafficQos`; `modelguard qos plan`
 * uses the planner directly.
 */
import type { Registry } from 'prom-client';
import type { Snapshot } from '../core/snapshot.ts';
import { TrafficQos, type TrafficQosOptions } from './applier.ts';
import { registerQosMetrics } from './metrics.ts';
import type { ListenerPorts } from './targets.ts';

export { TrafficQos } from './applier.ts';
export type { QosStatus, QosClassCounters } from './contract.ts';

/** The port of a bound listener URL, or undefined when it is bound to loopback (never on the uplink). */
export function listenerPort(url: string | undefined): number | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (host === 'localhost' || host === '::1' || host.startsWith('127.')) return undefined;
    return u.port === '' ? undefined : Number(u.port);
  } catch {
    // gRPC targets are host:port without a scheme
    return listenerPort(`tcp://${url}`);
  }
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
