/**
 * The compiled configuration every runtime part reads: self-contained, versioned, frozen, and free of
 * YAML or Kubernetes types. `config/compile.ts` builds it from validated resources; the broker,
 * dispatch and adapters only ever see this shape. All durations are milliseconds, all sizes bytes.
 */

export type BackendProtocol = 'kserve-v2-http' | 'kserve-v2-grpc' | 'openai' | 'http';
export type AuthMode = 'apiKey' | 'none';
export type Fairness = 'compute' | 'requests';
export type Visibility = 'public' | 'private';
export type AccessLogLevel = 'info' | 'warn' | 'error';

export interface EndpointSnapshot {
  /** Base URL of one replica, without a trailing slash. */
  readonly url: string;
  /** Requests the accelerator behind this endpoint runs at once. */
  readonly slots: number;
}

export interface BackendSnapshot {
  readonly name: string;
  readonly protocol: BackendProtocol;
  readonly endpoints: readonly EndpointSnapshot[];
  /** Backend call timeout. */
  readonly timeoutMs: number;
  /** Requests sent beyond `slots` per endpoint to hide the network round trip (0 = none). */
  readonly dispatchAhead: number;
  readonly healthCheck: {
    readonly intervalMs: number;
    /** Probe timeout. */
    readonly timeoutMs: number;
    /** Probe path; protocol default when absent (`/v2/health/ready`, `/v1/models`, `/`). */
    readonly path: string | undefined;
    /** Consecutive failures (probe or passive) that eject an endpoint, or mark a model down on it. */
    readonly failureThreshold: number;
    /** Fraction of endpoints that passive ejection never goes below (Envoy's healthy panic threshold). */
    readonly panicThreshold: number;
  };
  /** A call whose client left keeps its slot until the server is done (`finish`), or is cancelled (`abort`). */
  readonly cancelInFlight: 'finish' | 'abort';
  /** A call whose connection broke before any answer may be sent once more to another replica. */
  readonly retryOnReset: boolean;
  /** Brokers (node names) that own this backend; undefined: every broker. */
  readonly nodes?: readonly string[];
  /** TLS for https:// endpoints; absent when not configured (keeps the hash of older configurations). */
  readonly tls?: BackendTlsSnapshot;
  /** Where the link's secret is read from (never the secret itself); absent when none. */
  readonly credentials?: BackendCredentialsSnapshot;
  /**
   * Traffic QoS per priority level (src/core/levels.ts): calls to this backend's remote endpoints use
   * one connection pool per level, bound to the level's block of local ports; absent when off.
   */
  readonly priorityLevels?: PriorityLevelsSnapshot;
}

export interface BackendTlsSnapshot {
  /** PEM file paths, read when the link is built. */
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly serverName: string | undefined;
  readonly insecureSkipVerify: boolean;
}

export interface BackendCredentialsSnapshot {
  readonly env: string | undefined;
  readonly file: string | undefined;
  /** Lower-case header name. */
  readonly header: string;
  /** Text before the secret ("Bearer"), or "" for the bare secret. */
  readonly scheme: string;
}

export type OffloadWhen = 'saturated' | 'failover' | 'hard-example' | 'never';

export interface OffloadSnapshot {
  readonly backend: string;
  readonly when: OffloadWhen;
  /** Name the offload backend knows the model by. */
  readonly backendModel: string;
  /** Private models are offloaded only with this set. */
  readonly allowPrivate: boolean;
  /** hard-example: re-run in the cloud when the top probability is under this. */
  readonly confidenceThreshold: number | undefined;
  /** hard-example: output tensor with the class probabilities (the first output when undefined). */
  readonly confidenceOutput: string | undefined;
  /** hard-example: how long to wait for the cloud after the edge answer (undefined: until the deadline). */
  readonly cloudWaitMs: number | undefined;
  readonly budget: { readonly requestsPerSecond: number | undefined; readonly requestsPerDay: number | undefined } | undefined;
  readonly breaker: { readonly failureThreshold: number; readonly slowCallMs: number; readonly openForMs: number };
}

export interface ModelSnapshot {
  readonly name: string;
  readonly backend: string;
  readonly visibility: Visibility;
  /** Name the backend knows the model by (defaults to `name`). */
  readonly backendModel: string;
  readonly offload: OffloadSnapshot | undefined;
  /** Per-model body limit (falls back to the gateway's). */
  readonly maxBodyBytes: number | undefined;
  /** Cross-application batching along dim 0 (broker/batching); absent when off (keeps older hashes). */
  readonly batching?: BatchingSnapshot;
}

export interface BatchingSnapshot {
  /** Rows (dim 0) in one backend call, at most. */
  readonly maxBatchSize: number;
  /** Longest a forming batch holds its free slot waiting for more rows. */
  readonly maxDelayMs: number;
}

export interface GroupSnapshot {
  readonly name: string;
  /** Higher is served first, strictly. */
  readonly priority: number;
  /** Share among groups of the same priority. */
  readonly weight: number;
  /**
   * Slots of each backend kept free for this group and higher priorities: lower-priority groups may
   * not hold them. Trades some throughput for the latency of important work (no preemption exists).
   */
  readonly reservedSlots: number;
  /** earlyRefusal: refuse at arrival what the drain rate says cannot start before its deadline (broker/admission.ts). */
  readonly queue: { readonly maxLength: number; readonly maxWaitMs: number; readonly earlyRefusal: boolean };
}

/** Source-address rules: allowed when `allow` is empty or matches, and `deny` does not match. */
export interface SourcesSnapshot {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

/** What an app may do: inference, metadata, and backend admin paths (repository load/unload). */
export type AppOperation = 'infer' | 'metadata' | 'admin';

export interface AppSnapshot {
  readonly name: string;
  readonly serviceGroup: string;
  /** Lower-case hex sha256 digests of the app's API keys. */
  readonly keyHashes: readonly string[];
  /** Private models this app is granted. */
  readonly models: readonly string[];
  readonly rateLimit: { readonly requestsPerSecond: number; readonly burst: number } | undefined;
  /** Per-model token buckets, by model name. */
  readonly modelRateLimits: Readonly<Record<string, { readonly requestsPerSecond: number; readonly burst: number }>>;
  /** Requests queued or running at once. */
  readonly maxInflight: number | undefined;
  readonly quota: { readonly requestsPerHour: number | undefined; readonly requestsPerDay: number | undefined } | undefined;
  readonly operations: readonly AppOperation[];
  readonly sources: SourcesSnapshot | undefined;
}

export interface GatewaySnapshot {
  readonly name: string;
  readonly listeners: { readonly http: string; readonly grpc: string; readonly admin: string; readonly broker: string };
  /** Listeners whose address the configuration sets; the others take defaults (admin: per role). */
  readonly listenersGiven?: readonly ('grpc' | 'admin')[];
  readonly auth: AuthMode;
  readonly fairness: Fairness;
  /** Largest request body accepted, bytes. */
  readonly maxBodyBytes: number;
  /** Time a client has to send its whole request (slow clients cannot hold a connection). */
  readonly requestReadTimeoutMs: number;
  readonly mqtt: MqttSnapshot | undefined;
  readonly sources: SourcesSnapshot | undefined;
  /** OTLP/HTTP span export; undefined when tracing is off. */
  readonly tracing: { readonly endpoint: string; readonly sampleRate: number; readonly serviceName: string } | undefined;
  /** Lower-case hex sha256 digests of the admin tokens. */
  readonly adminTokenHashes: readonly string[];
  readonly audit: { readonly destination: string; readonly maxBytes: number; readonly maxFiles: number } | undefined;
  /** One JSON line per request (src/observability/access-log.ts); absent when not configured (off). */
  readonly accessLog?: AccessLogSnapshot;
  /** Proxies a broker trusts to assert app identity (src/link). */
  readonly proxies: readonly ProxySnapshot[];
  /** Lower-case hex sha256 digests of the tokens nodes present to a controller. */
  readonly nodeTokenHashes: readonly string[];
  /** JWT identities; absent when not configured. */
  readonly jwt?: JwtSnapshot;
  /** Where metrics are pushed besides /metrics; absent when not configured. */
  readonly metrics?: MetricsSnapshot;
  /** Mutual TLS on the broker listener (PEM file paths); absent when the listener is plain HTTP. */
  readonly brokerTls?: BrokerTlsSnapshot;
  /** Uplink shaping by the host kernel (src/qos); absent when not configured. */
  readonly trafficQoS?: TrafficQosSnapshot;
}

export interface TrafficQosSnapshot {
  /** Network interface whose egress is shaped. */
  readonly interface: string;
  /** What the uplink carries upstream, bits per second. */
  readonly uplinkBitsPerSecond: number;
  /** Shaped to this percentage of the uplink rate. */
  readonly shapePercent: number;
  /** One class per ServiceGroup priority level (src/core/levels.ts); absent when off or with one level only. */
  readonly priorityLevels?: PriorityLevelsSnapshot;
}

/**
 * Priority levels the kernel tells apart on the uplink: connections to remote endpoints are opened
 * per level, each from its own block of local ports, which a u32 filter matches with a mask.
 * Level i binds to ports [firstPort + i × portsPerLevel, firstPort + (i + 1) × portsPerLevel).
 */
export interface PriorityLevelsSnapshot {
  /** First port of the range; a multiple of 8 × portsPerLevel. */
  readonly firstPort: number;
  /** Ports per level: a power of two. */
  readonly portsPerLevel: number;
  /** Highest priority first: the group priorities of each level and the groups that have them. */
  readonly levels: readonly PriorityLevelSnapshot[];
}

export interface PriorityLevelSnapshot {
  /** ServiceGroup priorities, highest first (several only in the last level, when there are more than 7). */
  readonly priorities: readonly number[];
  readonly groups: readonly string[];
}

/** Metrics pushed out of the box (src/observability/remote-write.ts). */
export interface MetricsSnapshot {
  readonly remoteWrite: RemoteWriteSnapshot | undefined;
}

export interface RemoteWriteSnapshot {
  readonly url: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Unsent batches kept while the endpoint is unreachable (oldest dropped beyond). */
  readonly maxPendingBatches: number;
  /** As written: `${VAR}` is expanded from the environment of the process that pushes. */
  readonly externalLabels: Readonly<Record<string, string>>;
  readonly credentials: BackendCredentialsSnapshot | undefined;
  readonly tls: BackendTlsSnapshot | undefined;
}

export interface BrokerTlsSnapshot {
  readonly cert: string;
  readonly key: string;
  /** CA(s) a proxy's client certificate must be signed by. */
  readonly clientCa: string;
}

export interface JwtSnapshot {
  readonly issuer: string;
  readonly audience: string;
  readonly jwksFile: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly appClaim: string;
  readonly algorithms: readonly string[];
  readonly clockToleranceMs: number;
  readonly cacheMaxAgeMs: number;
}

export interface ProxySnapshot {
  readonly name: string;
  readonly tokenHashes: readonly string[];
  /** Client certificate names (lower case) that identify it over brokerTls; absent when none. */
  readonly certificateNames?: readonly string[];
  /** Apps it may assert; empty: every app. */
  readonly apps: readonly string[];
}

/** MQTT ingress (src/adapters/mqtt): an external broker ModelGuard subscribes to, or an embedded one. */
export interface MqttSnapshot {
  readonly url: string;
  readonly embedded: boolean;
  readonly qos: 0 | 1 | 2;
  /** Requests arrive on `<topicPrefix>/infer/<model>`. */
  readonly topicPrefix: string;
  /** Shared-subscription group on an external broker; undefined: a plain subscription. */
  readonly sharedGroup: string | undefined;
  readonly clientId: string | undefined;
  readonly username: string | undefined;
  /** File paths; read when the ingress connects. */
  readonly passwordFile: string | undefined;
  readonly tls: { readonly ca: string | undefined; readonly cert: string | undefined; readonly key: string | undefined } | undefined;
}

export interface AccessLogSnapshot {
  /** false keeps the settings but writes nothing. */
  readonly enabled: boolean;
  /** Lowest level written: info (every request), warn (rejections and failures), error (failures). */
  readonly level: AccessLogLevel;
  /** Fraction of info lines written, 0..1; warn and error lines are always written. */
  readonly sampleRate: number;
  /** `stdout`, `stderr`, or a file path the lines are appended to. */
  readonly destination: string;
}

export interface Snapshot {
  /** Monotonic per producer. */
  readonly version: number;
  /** sha256 of the canonical content; equal content, equal hash. */
  readonly hash: string;
  readonly gateway: GatewaySnapshot;
  readonly groups: Readonly<Record<string, GroupSnapshot>>;
  readonly backends: Readonly<Record<string, BackendSnapshot>>;
  readonly models: Readonly<Record<string, ModelSnapshot>>;
  readonly apps: Readonly<Record<string, AppSnapshot>>;
}

/** The group that always exists (weight 1, priority 0); takes unauthenticated traffic under `auth: none`. */
export const DEFAULT_GROUP = 'default';
