/**
 * One compiled snapshot → the part each node needs (DESIGN: "one snapshot per broker and per
 * proxy, holding only what that node needs"). A proxy gets its apps' policy and the models they
 * may call, but no backend addresses and no proxy credentials; a broker gets the backends it owns
 * (Backend.spec.nodes), the models they serve, the apps that may call them, and their groups.
 * Each part is sealed with its own hash and the full snapshot's version.
 */
import { DEFAULT_GROUP, type AppSnapshot, type BackendSnapshot, type GatewaySnapshot, type GroupSnapshot, type ModelSnapshot, type Snapshot } from '../core/snapshot.ts';
import { sealSnapshot } from './seal.ts';

function pick<T>(record: Readonly<Record<string, T>>, keep: (value: T, name: string) => boolean): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [name, value] of Object.entries(record)) if (keep(value, name)) out[name] = value;
  return out;
}

function groupsOf(full: Snapshot, apps: Readonly<Record<string, AppSnapshot>>): Record<string, GroupSnapshot> {
  const used = new Set([DEFAULT_GROUP, ...Object.values(apps).map((a) => a.serviceGroup)]);
  return pick(full.groups, (_, name) => used.has(name));
}

/** The broker listener's certificate files are the broker's business. */
function withoutBrokerTls(g: GatewaySnapshot): GatewaySnapshot {
  const { brokerTls: _tls, ...rest } = g;
  return rest;
}

/** What a proxy serving `apps` (all apps when empty) needs. */
export function proxySnapshot(full: Snapshot, apps: readonly string[]): Snapshot {
  const kept = pick(full.apps, (_, name) => apps.length === 0 || apps.includes(name));
  const granted = new Set(Object.values(kept).flatMap((a) => a.models));
  const models = pick(full.models, (m) => m.visibility === 'public' || granted.has(m.name));
  return sealSnapshot(
    {
      gateway: { ...withoutBrokerTls(full.gateway), proxies: [], nodeTokenHashes: [] },
      groups: groupsOf(full, kept),
      backends: {},
      models,
      apps: kept,
    },
    full.version,
  );
}

/** What the broker named `node` needs. */
export function brokerSnapshot(full: Snapshot, node: string): Snapshot {
  const owned = (b: BackendSnapshot): boolean => b.nodes === undefined || b.nodes.includes(node);
  const models: Record<string, ModelSnapshot> = pick(full.models, (m) => {
    const b = full.backends[m.backend];
    return b !== undefined && owned(b);
  });
  // Offload targets (usually a cloud backend) follow the models that use them.
  const needed = new Set(Object.values(models).flatMap((m) => (m.offload ? [m.backend, m.offload.backend] : [m.backend])));
  const backends = pick(full.backends, (b) => owned(b) || needed.has(b.name));
  const anyPublic = Object.values(models).some((m) => m.visibility === 'public');
  const apps = pick(full.apps, (a) => anyPublic || a.models.some((m) => models[m] !== undefined));
  return sealSnapshot({ gateway: full.gateway, groups: groupsOf(full, apps), backends, models, apps }, full.version);
}
