/**
 * Validated resources → the Snapshot every runtime part reads (src/core/snapshot.ts): durations in
 * milliseconds, sizes in bytes, defaults applied, the `default` group present, URLs without a trailing
 * slash, deep-frozen, and hashed so that equal content gives an equal hash whatever the file layout.
 */
import { DEFAULT_GROUP } from '../core/snapshot.ts';
import type { AppSnapshot, BackendSnapshot, GatewaySnapshot, GroupSnapshot, ModelSnapshot, OffloadSnapshot, Snapshot, SourcesSnapshot } from '../core/snapshot.ts';
import type { RemoteWriteSnapshot } from '../core/snapshot.ts';
import { priorityLevels } from '../core/levels.ts';
import { parseRate } from '../core/rate.ts';
import { DEFAULTS, GatewaySpecSchema, ServiceGroupSpecSchema, durationMs, sizeBytes } from './schema.ts';
import { resolveListeners } from './schema-gateway.ts';
import { sealSnapshot } from './seal.ts';
import type { App, Backend, Gateway, Model, Resource, ServiceGroup } from './schema.ts';

const stripSlash = (url: string): string => url.replace(/\/+$/, '');

function compileRemoteWrite(r: NonNullable<NonNullable<Gateway['spec']['metrics']>['remoteWrite']>): RemoteWriteSnapshot {
  return {
    url: r.url,
    intervalMs: durationMs(r.interval),
    timeoutMs: durationMs(r.timeout),
    maxPendingBatches: r.maxPendingBatches,
    externalLabels: { ...r.externalLabels },
    credentials: r.credentials === undefined ? undefined : { env: r.credentials.env, file: r.credentials.file, header: r.credentials.header.toLowerCase(), scheme: r.credentials.scheme },
    tls: r.tls === undefined ? undefined : { ca: r.tls.ca, cert: r.tls.cert, key: r.tls.key, serverName: r.tls.serverName, insecureSkipVerify: r.tls.insecureSkipVerify },
  };
}

function compileGateway(g: Gateway | undefined): GatewaySnapshot {
  const spec = g?.spec ?? GatewaySpecSchema.parse({});
  return {
    name: g?.metadata.name ?? DEFAULTS.gateway.name,
    listeners: resolveListeners(spec.listeners),
    listenersGiven: (['grpc', 'admin'] as const).filter((l) => spec.listeners[l] !== undefined),
    auth: spec.auth,
    fairness: spec.fairness,
    maxBodyBytes: sizeBytes(spec.maxBodySize),
    requestReadTimeoutMs: durationMs(spec.requestReadTimeout),
    mqtt:
      spec.mqtt === undefined
        ? undefined
        : {
            url: spec.mqtt.url,
            embedded: spec.mqtt.embedded,
            qos: spec.mqtt.qos as 0 | 1 | 2,
            topicPrefix: spec.mqtt.topicPrefix,
            sharedGroup: spec.mqtt.sharedGroup,
            clientId: spec.mqtt.clientId,
            username: spec.mqtt.username,
            passwordFile: spec.mqtt.passwordFile,
            tls: spec.mqtt.tls === undefined ? undefined : { ca: spec.mqtt.tls.ca, cert: spec.mqtt.tls.cert, key: spec.mqtt.tls.key },
          },
    sources: compileSources(spec.sources),
    tracing: spec.tracing === undefined ? undefined : { endpoint: spec.tracing.endpoint, sampleRate: spec.tracing.sampleRate, serviceName: spec.tracing.serviceName },
    adminTokenHashes: spec.adminTokens.map((t) => t.sha256).sort(),
    audit: spec.audit === undefined ? undefined : { destination: spec.audit.destination, maxBytes: sizeBytes(spec.audit.maxSize), maxFiles: spec.audit.maxFiles },
    // Left out when not configured, so a configuration without it keeps its hash.
    ...(spec.accessLog === undefined ? {} : { accessLog: { ...spec.accessLog } }),
    proxies: spec.proxies
      .map((p) => ({
        name: p.name,
        tokenHashes: p.tokens.map((t) => t.sha256).sort(),
        // Left out when empty, so a configuration without them keeps its hash.
        ...(p.certificateNames.length === 0 ? {} : { certificateNames: [...new Set(p.certificateNames.map((n) => n.toLowerCase()))].sort() }),
        apps: [...new Set(p.apps)].sort(),
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    nodeTokenHashes: spec.nodeTokens.map((t) => t.sha256).sort(),
    // Left out when not configured, so a configuration without it keeps its hash.
    ...(spec.metrics?.remoteWrite === undefined ? {} : { metrics: { remoteWrite: compileRemoteWrite(spec.metrics.remoteWrite) } }),
    ...(spec.trafficQoS === undefined
      ? {}
      : { trafficQoS: { interface: spec.trafficQoS.interface, uplinkBitsPerSecond: parseRate(spec.trafficQoS.uplinkRate) ?? 0, shapePercent: spec.trafficQoS.shapePercent } }),
    ...(spec.brokerTls === undefined ? {} : { brokerTls: { cert: spec.brokerTls.cert, key: spec.brokerTls.key, clientCa: spec.brokerTls.clientCa } }),
    ...(spec.jwt === undefined
      ? {}
      : {
          jwt: {
            issuer: spec.jwt.issuer,
            audience: spec.jwt.audience,
            jwksFile: spec.jwt.jwksFile,
            jwksUrl: spec.jwt.jwksUrl,
            appClaim: spec.jwt.appClaim,
            algorithms: [...new Set(spec.jwt.algorithms)].sort(),
            clockToleranceMs: durationMs(spec.jwt.clockTolerance),
            cacheMaxAgeMs: durationMs(spec.jwt.cacheMaxAge),
          },
        }),
  };
}

function compileGroup(name: string, spec: ServiceGroup['spec']): GroupSnapshot {
  return {
    name,
    priority: spec.priority,
    weight: spec.weight,
    reservedSlots: spec.reservedSlots,
    queue: { maxLength: spec.queue.maxLength, maxWaitMs: durationMs(spec.queue.maxWait), earlyRefusal: spec.queue.earlyRefusal },
  };
}

function compileBackend(b: Backend): BackendSnapshot {
  const s = b.spec;
  return {
    name: b.metadata.name,
    protocol: s.protocol,
    endpoints: s.endpoints.map((e) => ({ url: stripSlash(e.url), slots: e.slots })),
    timeoutMs: durationMs(s.timeout),
    dispatchAhead: s.dispatchAhead,
    healthCheck: {
      intervalMs: durationMs(s.healthCheck.interval),
      timeoutMs: durationMs(s.healthCheck.timeout),
      path: s.healthCheck.path,
      failureThreshold: s.healthCheck.failureThreshold,
      panicThreshold: s.healthCheck.panicThreshold,
    },
    cancelInFlight: s.cancelInFlight,
    retryOnReset: s.retryOnReset,
    ...(s.nodes === undefined ? {} : { nodes: [...new Set(s.nodes)].sort() }),
    // Left out when not configured, so a configuration without them keeps its hash.
    ...(s.tls === undefined
      ? {}
      : { tls: { ca: s.tls.ca, cert: s.tls.cert, key: s.tls.key, serverName: s.tls.serverName, insecureSkipVerify: s.tls.insecureSkipVerify } }),
    ...(s.credentials === undefined
      ? {}
      : { credentials: { env: s.credentials.env, file: s.credentials.file, header: s.credentials.header.toLowerCase(), scheme: s.credentials.scheme } }),
  };
}

function compileOffload(m: Model): OffloadSnapshot | undefined {
  const o = m.spec.offload;
  if (o === undefined) return undefined;
  return {
    backend: o.backend,
    when: o.when,
    backendModel: o.backendModel ?? m.spec.backendModel,
    allowPrivate: o.allowPrivate,
    confidenceThreshold: o.confidenceThreshold,
    confidenceOutput: o.confidenceOutput,
    cloudWaitMs: o.cloudWait === undefined ? undefined : durationMs(o.cloudWait),
    budget: o.budget === undefined ? undefined : { requestsPerSecond: o.budget.requestsPerSecond, requestsPerDay: o.budget.requestsPerDay },
    breaker: { failureThreshold: o.breaker.failureThreshold, slowCallMs: durationMs(o.breaker.slowCall), openForMs: durationMs(o.breaker.openFor) },
  };
}

function compileModel(m: Model): ModelSnapshot {
  const s = m.spec;
  return {
    name: m.metadata.name,
    backend: s.backend,
    visibility: s.visibility,
    backendModel: s.backendModel,
    offload: compileOffload(m),
    maxBodyBytes: s.maxBodySize === undefined ? undefined : sizeBytes(s.maxBodySize),
    ...(s.batching === undefined ? {} : { batching: { maxBatchSize: s.batching.maxBatchSize, maxDelayMs: durationMs(s.batching.maxDelay) } }),
  };
}

function compileApp(a: App): AppSnapshot {
  const s = a.spec;
  return {
    name: a.metadata.name,
    serviceGroup: s.serviceGroup,
    // Sets in meaning: sorted so that the order in the file does not change the hash.
    keyHashes: s.apiKeys.map((k) => k.sha256).sort(),
    models: [...s.models].sort(),
    rateLimit: s.rateLimit === undefined ? undefined : { requestsPerSecond: s.rateLimit.requestsPerSecond, burst: s.rateLimit.burst },
    modelRateLimits: Object.fromEntries(s.modelRateLimits.map((l) => [l.model, { requestsPerSecond: l.requestsPerSecond, burst: l.burst }])),
    maxInflight: s.maxInflight,
    quota: s.quota === undefined ? undefined : { requestsPerHour: s.quota.requestsPerHour, requestsPerDay: s.quota.requestsPerDay },
    operations: [...new Set(s.operations)].sort(),
    sources: compileSources(s.sources),
  };
}

function compileSources(s: { allow: string[]; deny: string[] } | undefined): SourcesSnapshot | undefined {
  return s === undefined ? undefined : { allow: [...s.allow], deny: [...s.deny] };
}

/**
 * Compiles validated resources (validateDocuments found no errors) into a frozen Snapshot.
 * Names are unique per kind by then; a later duplicate would overwrite an earlier one.
 */
export function compileSnapshot(resources: readonly Resource[], version: number): Snapshot {
  let gateway: Gateway | undefined;
  const groups: Record<string, GroupSnapshot> = { [DEFAULT_GROUP]: compileGroup(DEFAULT_GROUP, ServiceGroupSpecSchema.parse({})) };
  const backends: Record<string, BackendSnapshot> = {};
  const models: Record<string, ModelSnapshot> = {};
  const apps: Record<string, AppSnapshot> = {};
  for (const r of resources) {
    const name = r.metadata.name;
    switch (r.kind) {
      case 'Gateway':
        gateway ??= r;
        break;
      case 'ServiceGroup':
        groups[name] = compileGroup(name, r.spec);
        break;
      case 'Backend':
        backends[name] = compileBackend(r);
        break;
      case 'Model':
        models[name] = compileModel(r);
        break;
      case 'App':
        apps[name] = compileApp(r);
        break;
    }
  }
  let compiled = compileGateway(gateway);
  // Per-priority classes need the groups: their levels go to the gateway (the planner) and to every
  // backend (dispatch opens a connection pool per level to its remote endpoints).
  const q = gateway?.spec.trafficQoS;
  const levels = q?.priorityClasses === true && compiled.trafficQoS !== undefined ? priorityLevels(groups, q.sourcePorts) : undefined;
  if (levels !== undefined && compiled.trafficQoS !== undefined) {
    compiled = { ...compiled, trafficQoS: { ...compiled.trafficQoS, priorityLevels: levels } };
    for (const [name, b] of Object.entries(backends)) backends[name] = { ...b, priorityLevels: levels };
  }
  return sealSnapshot({ gateway: compiled, groups, backends, models, apps }, version);
}
