/**
 * Which packets are ModelGuard's inference traffic, from the configuration: connections to remote
 * backend endpoints (offload targets are Backends too) and to an external MQTT broker, and answers
 * from the listeners that take inference (HTTP, gRPC, the broker listener, an embedded MQTT broker).
 * Loopback never crosses the uplink, so it is left out. Host names are resolved here, once per
 * (re)configuration: a name that moves to another address is followed on the next reload.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Snapshot } from '../core/snapshot.ts';
import type { QosMatch } from './contract.ts';

/** Ports ModelGuard's inference listeners are bound to (the real ones, after binding). */
export interface ListenerPorts {
  readonly http?: number | undefined;
  readonly grpc?: number | undefined;
  readonly broker?: number | undefined;
  readonly mqtt?: number | undefined;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'mqtt:': 1883, 'mqtts:': 8883, 'ws:': 80, 'wss:': 443 };

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

/** host:port of a URL, or undefined when it is not one. */
function endpointOf(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port === '' ? DEFAULT_PORTS[u.protocol] : Number(u.port);
    return port === undefined || host === '' ? undefined : { host, port };
  } catch {
    return undefined;
  }
}

export type Resolver = (host: string) => Promise<readonly { address: string; family: number }[]>;

const systemResolver: Resolver = (host) => lookup(host, { all: true });

async function addresses(host: string, resolve: Resolver): Promise<{ address: string; family: 4 | 6 }[]> {
  const family = isIP(host);
  if (family === 4 || family === 6) return [{ address: host, family }];
  if (host === 'localhost') return [];
  try {
    return (await resolve(host)).flatMap((a) => (a.family === 4 || a.family === 6 ? [{ address: a.address, family: a.family }] : []));
  } catch {
    return []; // an unresolvable name has no packets to classify; the backend's health check reports it
  }
}

/** The listener ports of a configuration as written (for `qos plan`, before anything is bound). */
export function configuredPorts(s: Snapshot): ListenerPorts {
  const port = (hostPort: string): number | undefined => {
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(hostPort);
    const host = m?.[1] ?? m?.[2] ?? '';
    return m === null || isLoopback(host) || host === 'localhost' ? undefined : Number(m[3]);
  };
  const mqtt = s.gateway.mqtt?.embedded ? endpointOf(s.gateway.mqtt.url) : undefined;
  return {
    http: port(s.gateway.listeners.http),
    grpc: port(s.gateway.listeners.grpc),
    broker: port(s.gateway.listeners.broker),
    mqtt: mqtt === undefined || isLoopback(mqtt.host) ? undefined : mqtt.port,
  };
}

export async function qosMatches(s: Snapshot, ports: ListenerPorts, resolve: Resolver = systemResolver): Promise<QosMatch[]> {
  const out: QosMatch[] = [];
  const seen = new Set<string>();
  const add = (m: QosMatch): void => {
    const key = m.kind === 'source-port' ? `s:${m.port}` : `d:${m.address}:${m.port}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push(m);
  };
  for (const name of ['http', 'grpc', 'broker', 'mqtt'] as const) {
    const port = ports[name];
    if (port !== undefined && port > 0) add({ kind: 'source-port', port, why: `answers of the ${name} listener` });
  }
  const remotes: { url: string; why: string; levelled?: true }[] = [];
  // Dispatch opens per-level connections to HTTP backends (gRPC multiplexes one channel).
  const levelled = s.gateway.trafficQoS?.priorityLevels !== undefined;
  for (const b of Object.values(s.backends).sort((x, y) => (x.name < y.name ? -1 : 1))) {
    const perLevel = levelled && b.protocol !== 'kserve-v2-grpc';
    for (const e of b.endpoints) remotes.push({ url: e.url, why: `backend ${b.name}`, ...(perLevel ? { levelled: true as const } : {}) });
  }
  const mqtt = s.gateway.mqtt;
  if (mqtt !== undefined && !mqtt.embedded) remotes.push({ url: mqtt.url, why: 'MQTT broker' });
  for (const r of remotes) {
    const ep = endpointOf(r.url);
    if (ep === undefined) continue;
    for (const a of await addresses(ep.host, resolve)) {
      if (!isLoopback(a.address)) add({ kind: 'destination', address: a.address, family: a.family, port: ep.port, why: r.why, ...(r.levelled ? { levelled: true as const } : {}) });
    }
  }
  return out;
}
