/**
 * The resource kinds of the configuration language as zod schemas; the TypeScript types are
 * inferred from them. Objects are strict (unknown keys fail). Every default lives in DEFAULTS, written
 * in the same syntax a user writes, and every field's `.describe()` says what it does and its default:
 * the loader shows that text as the hint when a value is wrong, and docs/configuration.md repeats it.
 */
import { z } from 'zod';
import { DEFAULT_GROUP } from '../core/snapshot.ts';
import type { AccessLogLevel, AuthMode, BackendProtocol, Fairness, Visibility } from '../core/snapshot.ts';
import { dnsName, duration, hostPort, httpUrl, mqttUrl, parseSize, sha256Hex, show, size, splitHostPort, withHint, cidr } from './primitives.ts';
import { parseDuration } from '../core/duration.ts';

export const API_VERSION = 'modelguard.io/v1alpha1';
export const KINDS = ['Backend', 'Model', 'ServiceGroup', 'App', 'Gateway'] as const;
export type Kind = (typeof KINDS)[number];

export const BACKEND_PROTOCOLS = ['kserve-v2-http', 'kserve-v2-grpc', 'openai', 'http'] as const satisfies readonly BackendProtocol[];
export const VISIBILITIES = ['public', 'private'] as const satisfies readonly Visibility[];
export const OFFLOAD_WHEN = ['saturated', 'failover', 'hard-example', 'never'] as const;
export const AUTH_MODES = ['apiKey', 'none'] as const satisfies readonly AuthMode[];
export const FAIRNESS = ['compute', 'requests'] as const satisfies readonly Fairness[];
export const ACCESS_LOG_LEVELS = ['info', 'warn', 'error'] as const satisfies readonly AccessLogLevel[];

/** Every default of the language, in one place. Derived defaults are noted where they apply. */
export const DEFAULTS = {
  backend: {
    protocol: 'kserve-v2-http',
    slots: 1,
    timeout: '30s',
    dispatchAhead: 0,
    healthCheck: { interval: '5s', timeout: '1s', failureThreshold: 3 },
  },
  model: { visibility: 'public', offloadWhen: 'saturated' },
  offload: { allowPrivate: false, breaker: { failureThreshold: 3, slowCall: '1s', openFor: '1s' } },
  credentials: { header: 'authorization', scheme: 'Bearer' },
  serviceGroup: { priority: 0, weight: 1, reservedSlots: 0, queue: { maxLength: 100, maxWait: '5s' } },
  app: { serviceGroup: DEFAULT_GROUP },
  gateway: {
    name: 'default',
    listeners: { http: '0.0.0.0:8080', grpc: '0.0.0.0:8081', admin: '127.0.0.1:9090', broker: '0.0.0.0:8010' },
    auth: 'apiKey',
    fairness: 'compute',
    maxBodySize: '8Mi',
    mqtt: { url: 'mqtt://127.0.0.1:1883', embedded: false, qos: 1, topicPrefix: 'modelguard/v1' },
    accessLog: { enabled: true, level: 'info', sampleRate: 1, destination: 'stdout' },
  },
} as const;

const D = DEFAULTS;

// ---- common envelope ----

const Metadata = z
  .strictObject({
    name: dnsName().describe('unique name within its kind (DNS-1123 label: a-z, 0-9 and "-", at most 63); required'),
    labels: z.record(z.string(), z.string()).optional().describe('free-form string labels for tools; no default'),
    annotations: z.record(z.string(), z.string()).optional().describe('free-form string notes for tools; no default'),
  })
  .describe('identity of the resource; required (name)');

const apiVersion = z
  .literal(API_VERSION)
  .default(API_VERSION)
  .describe(`schema version of the document, the only one there is; default ${API_VERSION}`);

// ---- Backend ----

const Endpoint = z.strictObject({
  url: httpUrl().describe('base URL of one replica, http:// or https:// (a trailing "/" is dropped); required'),
  slots: z.int().min(1).default(D.backend.slots).describe(`requests the accelerator behind this endpoint runs at once; default ${D.backend.slots}`),
});

const HealthCheck = z
  .strictObject({
    interval: duration().default(D.backend.healthCheck.interval).describe(`time between readiness probes; default ${D.backend.healthCheck.interval}`),
    timeout: duration().default(D.backend.healthCheck.timeout).describe(`probe timeout, at most the interval; default ${D.backend.healthCheck.timeout}`),
    path: z
      .string()
      .startsWith('/', { error: (i) => withHint(`expected a path starting with "/", got ${show(i.input)}`, 'for example "/v2/health/ready"') })
      .optional()
      .describe('probe path; default by protocol: /v2/health/ready (kserve), /v1/models (openai), / (http)'),
    failureThreshold: z
      .int()
      .min(1)
      .default(D.backend.healthCheck.failureThreshold)
      .describe(`consecutive failed probes or requests that eject an endpoint; default ${D.backend.healthCheck.failureThreshold}`),
  })
  .superRefine((hc, ctx) => {
    if ((parseDuration(hc.timeout) ?? 0) > (parseDuration(hc.interval) ?? 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeout'],
        message: withHint(`probe timeout ${hc.timeout} is longer than the interval ${hc.interval}`, 'probes would overlap: lower timeout or raise interval'),
      });
    }
  });

/** TLS for the link to a backend over https:// (usually the cloud). Files are PEM, read when the link is built. */
const Tls = z
  .strictObject({
    ca: z.string().min(1).optional().describe('PEM file of the CA(s) that sign the server certificate; default the system CAs'),
    cert: z.string().min(1).optional().describe('PEM file of the client certificate (mutual TLS), with key; default none'),
    key: z.string().min(1).optional().describe('PEM file of the client private key, with cert; default none'),
    serverName: z.string().min(1).optional().describe('name checked against the server certificate (SNI); default the URL host'),
    insecureSkipVerify: z.boolean().default(false).describe('accept any server certificate (tests only: it allows a man in the middle); default false'),
  })
  .superRefine((t, ctx) => {
    if ((t.cert === undefined) !== (t.key === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [t.cert === undefined ? 'cert' : 'key'],
        message: withHint('a client certificate needs both cert and key', 'give both PEM files, or neither'),
      });
    }
  });

/** The secret for the link is never written inline: it is read from an environment variable or a file. */
const Credentials = z
  .strictObject({
    env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: (i) => withHint(`expected an environment variable name, got ${show(i.input)}`, 'for example CLOUD_API_KEY') }).optional().describe('environment variable that holds the API key or token; one of env or file is required'),
    file: z.string().min(1).optional().describe('file that holds the API key or token (trailing newline dropped); one of env or file is required'),
    header: z.string().regex(/^[A-Za-z0-9-]+$/).default(D.credentials.header).describe(`request header that carries the secret (e.g. x-api-key); default ${D.credentials.header}`),
    scheme: z.string().default(D.credentials.scheme).describe(`text before the secret in the header ("" for none); default ${D.credentials.scheme}`),
  })
  .superRefine((c, ctx) => {
    if ((c.env === undefined) === (c.file === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: withHint('credentials need exactly one of env or file', 'write env: CLOUD_API_KEY (an environment variable) or file: /run/secrets/cloud-key; never the secret itself'),
      });
    }
  });

export const BackendSpecSchema = z.strictObject({
  protocol: z.enum(BACKEND_PROTOCOLS).default(D.backend.protocol).describe(`wire protocol of the model server; default ${D.backend.protocol}`),
  endpoints: z.array(Endpoint).min(1).describe('the replicas of this model server, at least one; required'),
  timeout: duration().default(D.backend.timeout).describe(`time limit of one backend call; default ${D.backend.timeout}`),
  dispatchAhead: z
    .int()
    .min(0)
    .default(D.backend.dispatchAhead)
    .describe(`requests sent beyond slots per endpoint to hide the network round trip; default ${D.backend.dispatchAhead}`),
  healthCheck: HealthCheck.prefault({}).describe('readiness probing of each endpoint; defaults below'),
  nodes: z
    .array(dnsName())
    .optional()
    .describe('names of the brokers (nodes) that own this model server, for a controller; default every broker'),
  tls: Tls.optional().describe('TLS settings for https:// endpoints (CA, client certificate, server name); default system CAs, no client certificate'),
  credentials: Credentials.optional().describe('API key or bearer token sent to this backend (the cloud link), read from env or file; default none'),
});

export const BackendSchema = z.strictObject({
  apiVersion,
  kind: z.literal('Backend').describe('the kind of resource: Backend; required'),
  metadata: Metadata,
  spec: BackendSpecSchema.describe('the Backend settings; required (endpoints)'),
});

// ---- Model ----

/** A reference by name to a resource of `_kind` (resolved across resources in references.ts). */
const ref = (_kind: Kind) => dnsName();

const OffloadBudget = z.strictObject({
  requestsPerSecond: z.int().min(1).optional().describe('requests sent to the cloud in any one-second window, at most; default unlimited'),
  requestsPerDay: z.int().min(1).optional().describe('requests sent to the cloud per day (UTC), at most; default unlimited'),
});

const OffloadBreaker = z.strictObject({
  failureThreshold: z
    .int()
    .min(1)
    .default(D.offload.breaker.failureThreshold)
    .describe(`consecutive failed or slow cloud calls that open the breaker (stop offloading); default ${D.offload.breaker.failureThreshold}`),
  slowCall: duration()
    .default(D.offload.breaker.slowCall)
    .describe(`a cloud call not answered within this fails (the request goes back to the edge queue); default ${D.offload.breaker.slowCall}`),
  openFor: duration()
    .default(D.offload.breaker.openFor)
    .describe(`time between probes of the link while the breaker is open; default ${D.offload.breaker.openFor}`),
});

const Offload = z
  .strictObject({
    backend: ref('Backend').describe('Backend that takes the overflow (usually the cloud); required'),
    when: z
      .enum(OFFLOAD_WHEN)
      .default(D.model.offloadWhen)
      .describe(
        `saturated: when the predicted edge wait exceeds the predicted cloud time; failover: when no edge endpoint is healthy; hard-example: re-run in the cloud when the edge answer's confidence is low; never: off; default ${D.model.offloadWhen}`,
      ),
    backendModel: z.string().min(1).optional().describe('name the offload backend knows the model by; default the model\'s backendModel'),
    allowPrivate: z
      .boolean()
      .default(D.offload.allowPrivate)
      .describe(`a private model is offloaded only when this is true; default ${D.offload.allowPrivate}`),
    confidenceThreshold: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe('hard-example: re-run in the cloud when the top class probability is under this (0..1); required with hard-example'),
    confidenceOutput: z.string().min(1).optional().describe('hard-example: output tensor holding class probabilities; default the first output'),
    cloudWait: duration().optional().describe('hard-example: how long the answer waits for the cloud result after the edge one; default until the request deadline'),
    budget: OffloadBudget.optional().describe('caps on requests sent to the cloud; beyond them requests stay on the edge; default unlimited'),
    breaker: OffloadBreaker.prefault({}).describe('circuit breaker on the cloud link; defaults below'),
  })
  .superRefine((o, ctx) => {
    if (o.when === 'hard-example' && o.confidenceThreshold === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['confidenceThreshold'],
        message: withHint('hard-example needs confidenceThreshold', 'for example confidenceThreshold: 0.8 (re-run in the cloud when the top probability is under 0.8)'),
      });
    }
    if (o.when !== 'hard-example') {
      for (const key of ['confidenceThreshold', 'confidenceOutput', 'cloudWait'] as const) {
        if (o[key] !== undefined) {
          ctx.addIssue({ code: 'custom', path: [key], message: withHint(`${key} applies only with when: hard-example`, `remove it, or set when: hard-example (now ${o.when})`) });
        }
      }
    }
  });

export const ModelSpecSchema = z.strictObject({
  backend: ref('Backend').describe('Backend that serves this model; required'),
  visibility: z.enum(VISIBILITIES).default(D.model.visibility).describe(`public: any app; private: only apps that list it in models; default ${D.model.visibility}`),
  backendModel: z.string().min(1).optional().describe('name the backend knows the model by; default metadata.name'),
  offload: Offload.optional().describe('edge-to-cloud offload; default none'),
  maxBodySize: size().optional().describe('largest request body for this model (bytes, Ki, Mi, Gi); default the Gateway maxBodySize'),
});

export const ModelSchema = z
  .strictObject({
    apiVersion,
    kind: z.literal('Model').describe('the kind of resource: Model; required'),
    metadata: Metadata,
    spec: ModelSpecSchema.describe('the Model settings; required (backend)'),
  })
  // Derived default: the backend's model name is the model's own name.
  .transform((m) => ({ ...m, spec: { ...m.spec, backendModel: m.spec.backendModel ?? m.metadata.name } }));

// ---- ServiceGroup ----

export const ServiceGroupSpecSchema = z.strictObject({
  priority: z.int().default(D.serviceGroup.priority).describe(`higher is served first, strictly between levels; default ${D.serviceGroup.priority}`),
  weight: z.number().positive().default(D.serviceGroup.weight).describe(`share of the accelerator among groups of equal priority; default ${D.serviceGroup.weight}`),
  reservedSlots: z
    .int()
    .min(0)
    .default(D.serviceGroup.reservedSlots)
    .describe(`slots of each backend kept free for this group and higher priorities: lower priorities may not take them; default ${D.serviceGroup.reservedSlots}`),
  queue: z
    .strictObject({
      maxLength: z.int().min(1).default(D.serviceGroup.queue.maxLength).describe(`requests waiting at most; beyond it MG_QUEUE_FULL; default ${D.serviceGroup.queue.maxLength}`),
      maxWait: duration().default(D.serviceGroup.queue.maxWait).describe(`longest wait in the queue; beyond it MG_QUEUE_TIMEOUT; default ${D.serviceGroup.queue.maxWait}`),
    })
    .prefault({})
    .describe('the bounded queue of this group; defaults below'),
});

export const ServiceGroupSchema = z.strictObject({
  apiVersion,
  kind: z.literal('ServiceGroup').describe('the kind of resource: ServiceGroup; required'),
  metadata: Metadata,
  spec: ServiceGroupSpecSchema.prefault({}).describe('the ServiceGroup settings; all optional'),
});

// ---- App ----

const RateLimit = z
  .strictObject({
    requestsPerSecond: z.number().positive().describe('steady request rate allowed; required'),
    burst: z.int().min(1).optional().describe('requests allowed at once above the steady rate; default ceil(requestsPerSecond)'),
  })
  // Derived default: a burst of one second's worth of requests.
  .transform((r) => ({ requestsPerSecond: r.requestsPerSecond, burst: r.burst ?? Math.max(1, Math.ceil(r.requestsPerSecond)) }));

/** Source-address rules: a request must match `allow` (when given) and must not match `deny`. */
const Sources = z
  .strictObject({
    allow: z.array(cidr()).default(() => []).describe('addresses or CIDRs allowed to call; empty allows every address; default empty'),
    deny: z.array(cidr()).default(() => []).describe('addresses or CIDRs refused, checked before allow; default empty'),
  })
  .describe('source-address firewall (IPv4 and IPv6 CIDRs); default none');

const OPERATIONS = ['infer', 'metadata', 'admin'] as const;

const ModelRateLimit = z
  .strictObject({
    model: ref('Model').describe('the model this limit applies to; required'),
    requestsPerSecond: z.number().positive().describe('steady request rate allowed for this app on this model; required'),
    burst: z.int().min(1).optional().describe('requests allowed at once above the steady rate; default ceil(requestsPerSecond)'),
  })
  .transform((r) => ({ model: r.model, requestsPerSecond: r.requestsPerSecond, burst: r.burst ?? Math.max(1, Math.ceil(r.requestsPerSecond)) }));

export const AppSpecSchema = z.strictObject({
  serviceGroup: ref('ServiceGroup').default(D.app.serviceGroup).describe(`ServiceGroup whose share this app uses; default "${D.app.serviceGroup}"`),
  apiKeys: z
    .array(z.strictObject({ sha256: sha256Hex().describe('hex sha256 of one API key (never the key); required') }))
    .default(() => [])
    .describe('keys that identify this app; default none'),
  models: z.array(ref('Model')).default(() => []).describe('private models granted to this app; default none'),
  rateLimit: RateLimit.optional().describe('token-bucket limit on the app\'s requests; default unlimited'),
  modelRateLimits: z.array(ModelRateLimit).default(() => []).describe('token-bucket limits on this app\'s requests to one model each; default none'),
  maxInflight: z.int().min(1).optional().describe('requests of this app queued or running at once; beyond it MG_RATE_LIMITED; default unlimited'),
  quota: z
    .strictObject({
      requestsPerHour: z.int().min(1).optional().describe('requests allowed per clock hour (UTC); default unlimited'),
      requestsPerDay: z.int().min(1).optional().describe('requests allowed per day (UTC); default unlimited'),
    })
    .optional()
    .describe('period quotas; beyond them MG_RATE_LIMITED until the period ends; default none'),
  operations: z
    .array(z.enum(OPERATIONS))
    .default((): ('infer' | 'metadata' | 'admin')[] => ['infer', 'metadata'])
    .describe('what the app may do: infer, metadata, admin (model repository load/unload and other backend admin paths); default [infer, metadata]'),
  sources: Sources.optional(),
});

export const AppSchema = z.strictObject({
  apiVersion,
  kind: z.literal('App').describe('the kind of resource: App; required'),
  metadata: Metadata,
  spec: AppSpecSchema.prefault({}).describe('the App settings; all optional'),
});

// ---- Gateway ----

const WILDCARDS = new Set(['0.0.0.0', '::']);

const Listeners = z
  .strictObject({
    http: hostPort().default(D.gateway.listeners.http).describe(`inference over HTTP (KServe v2, OpenAI, pass-through); default ${D.gateway.listeners.http}`),
    grpc: hostPort().default(D.gateway.listeners.grpc).describe(`inference over gRPC (KServe v2); default ${D.gateway.listeners.grpc}`),
    admin: hostPort().default(D.gateway.listeners.admin).describe(`metrics, health, dashboard and admin API; default ${D.gateway.listeners.admin}`),
    broker: hostPort().default(D.gateway.listeners.broker).describe(`broker endpoint that proxies forward to; default ${D.gateway.listeners.broker}`),
  })
  .superRefine((listeners, ctx) => {
    const seen: { name: string; host: string; port: number }[] = [];
    for (const [name, address] of Object.entries(listeners)) {
      const hp = splitHostPort(address);
      if (hp === undefined || hp.port === 0) continue;
      const clash = seen.find((s) => s.port === hp.port && (s.host === hp.host || WILDCARDS.has(s.host) || WILDCARDS.has(hp.host)));
      if (clash !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: withHint(`${address} clashes with listeners.${clash.name} (${listeners[clash.name as keyof typeof listeners]})`, 'give each listener its own port'),
        });
      }
      seen.push({ name, ...hp });
    }
  });

const Mqtt = z
  .strictObject({
    url: mqttUrl().default(D.gateway.mqtt.url).describe(`MQTT broker to use, or where the embedded broker listens; default ${D.gateway.mqtt.url}`),
    embedded: z.boolean().default(D.gateway.mqtt.embedded).describe(`start an MQTT broker in-process at url; default ${D.gateway.mqtt.embedded}`),
    qos: z.int().min(0).max(2).default(D.gateway.mqtt.qos).describe(`QoS of the request subscription and of replies (0, 1 or 2); default ${D.gateway.mqtt.qos}`),
    topicPrefix: z
      .string()
      .regex(/^(?!\$)[^#+/]+(\/[^#+/]+)*$/, { error: (i) => withHint(`expected topic levels without wildcards, got ${show(i.input)}`, 'for example "modelguard/v1"') })
      .default(D.gateway.mqtt.topicPrefix)
      .describe(`requests arrive on <topicPrefix>/infer/<model>; default ${D.gateway.mqtt.topicPrefix}`),
    sharedGroup: dnsName()
      .optional()
      .describe('external broker: subscribe as $share/<sharedGroup>/… so instances in one group split the requests (MQTT 5 shared subscription); default none'),
    clientId: z.string().min(1).max(128).optional().describe('MQTT client id of ModelGuard on an external broker; default modelguard-<random>'),
    username: z.string().min(1).optional().describe("ModelGuard's own username on an external broker; default none"),
    passwordFile: z.string().min(1).optional().describe("file holding ModelGuard's own password on an external broker (trailing newline ignored); default none"),
    tls: z
      .strictObject({
        ca: z.string().min(1).optional().describe('PEM file of the CA that signed the broker certificate; default the system CAs'),
        cert: z.string().min(1).optional().describe("PEM client certificate file (mutual TLS); default none"),
        key: z.string().min(1).optional().describe('PEM private key file of cert; default none'),
      })
      .optional()
      .describe('TLS files for an mqtts:// or wss:// external broker; default none'),
  })
  .superRefine((m, ctx) => {
    if (m.embedded) {
      for (const field of ['sharedGroup', 'clientId', 'username', 'passwordFile', 'tls'] as const) {
        if (m[field] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: withHint(`${field} applies to an external broker, not the embedded one`, 'remove it, or set embedded: false'),
          });
        }
      }
    }
    if ((m.tls?.cert === undefined) !== (m.tls?.key === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: withHint('tls.cert and tls.key go together', 'give both files, or neither') });
    }
    if (m.embedded && !m.url.startsWith('mqtt://')) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: withHint(`the embedded broker speaks plain mqtt://, got ${show(m.url)}`, 'use an mqtt:// URL, or set embedded: false for an external broker'),
      });
    }
  });

const AccessLog = z.strictObject({
  enabled: z.boolean().default(D.gateway.accessLog.enabled).describe(`write the access log; false keeps the settings but writes nothing; default ${D.gateway.accessLog.enabled}`),
  level: z
    .enum(ACCESS_LOG_LEVELS)
    .default(D.gateway.accessLog.level)
    .describe(`lowest level written: info (every request), warn (rejections and failures), error (failures only); default ${D.gateway.accessLog.level}`),
  sampleRate: z
    .number()
    .min(0)
    .max(1)
    .default(D.gateway.accessLog.sampleRate)
    .describe(`fraction of info lines (answered requests) written, 0 to 1; warn and error lines are always written; default ${D.gateway.accessLog.sampleRate}`),
  destination: z
    .string()
    .min(1)
    .default(D.gateway.accessLog.destination)
    .describe(`stdout, stderr, or a file path the lines are appended to; default ${D.gateway.accessLog.destination}`),
});

export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const Jwt = z
  .strictObject({
    issuer: z.string().min(1).describe('required `iss` claim; required'),
    audience: z.string().min(1).describe('required `aud` claim (one of its values); required'),
    jwksFile: z.string().min(1).optional().describe('path of a JWKS (JSON Web Key Set) file with the public keys; no default: give this or jwksUrl'),
    jwksUrl: httpUrl().optional().describe('URL of the JWKS, fetched and cached; no default: give this or jwksFile'),
    appClaim: z.string().min(1).default('sub').describe('claim whose value is the App name; default sub'),
    algorithms: z
      .array(z.enum(JWT_ALGORITHMS))
      .min(1)
      .default(['RS256', 'PS256', 'ES256', 'EdDSA'])
      .describe('signature algorithms accepted (never none or HMAC); default RS256, PS256, ES256, EdDSA'),
    clockTolerance: duration().default('30s').describe('allowed clock skew for exp and nbf; default 30s'),
    cacheMaxAge: duration().default('10m').describe('how long fetched keys are kept before jwksUrl is fetched again; default 10m'),
  })
  .superRefine((j, ctx) => {
    if ((j.jwksFile === undefined) === (j.jwksUrl === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: withHint('give exactly one of jwksFile and jwksUrl', 'jwksFile: /etc/modelguard/jwks.json, or jwksUrl: https://idp.example/.well-known/jwks.json') });
    }
  });

/** Prometheus remote-write push of this process's metrics (src/observability/remote-write.ts). */
const RemoteWrite = z.strictObject({
  url: httpUrl().describe('remote-write endpoint, e.g. http://prometheus:9090/api/v1/write or a Mimir/VictoriaMetrics push URL; required'),
  interval: duration().default('15s').describe('time between pushes (each push sends every series once); default 15s'),
  timeout: duration().default('10s').describe('time one push may take before it counts as failed and is retried; default 10s'),
  maxPendingBatches: z
    .int()
    .min(1)
    .max(1000)
    .default(10)
    .describe('unsent batches kept while the endpoint is unreachable; beyond it the oldest is dropped and counted; default 10'),
  externalLabels: z
    .record(z.string(), z.string().min(1))
    .superRefine((labels, ctx) => {
      // Checked here rather than as the record's key schema, whose error zod reports without our hint.
      for (const name of Object.keys(labels)) {
        if (!/^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: withHint(`expected a Prometheus label name, got ${show(name)}`, 'letters, digits and "_", not starting with a digit or "__", e.g. node') });
        }
      }
    })
    .default(() => ({}))
    .describe('labels added to every series pushed (`${VAR}` is read from the environment), besides job="modelguard" and instance=<hostname>; default none'),
  credentials: Credentials.optional().describe('secret sent with every push (header, default Authorization: Bearer), read from env or file; default none'),
  tls: Tls.optional().describe('TLS settings for an https:// url (CA, client certificate, server name); default system CAs'),
});

/** Mutual TLS on the broker listener (src/link/tls.ts): PEM files, read at start and again on reload. */
const BrokerTls = z.strictObject({
  cert: z.string().min(1).describe("PEM file of the broker listener's certificate (with its chain); required"),
  key: z.string().min(1).describe('PEM file of the private key of cert; required'),
  clientCa: z.string().min(1).describe('PEM file of the CA(s) that sign proxy client certificates; a connection without such a certificate is refused; required'),
});

/** A client certificate name a proxy is known by: exact, compared case-insensitively, no wildcards. */
const CertificateName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[!-)+-~]+$/, { error: (i) => withHint(`expected one certificate name in printable ASCII without spaces or wildcards, got ${show(i.input)}`, 'for example "proxy-a.box-a" (a DNS SAN or the CN of the proxy\'s certificate)') });

export const GatewaySpecSchema = z.strictObject({
  listeners: Listeners.prefault({}).describe('listen addresses "host:port"; defaults below'),
  auth: z.enum(AUTH_MODES).default(D.gateway.auth).describe(`apiKey: every request needs an app key; none: trusted networks and demos only; default ${D.gateway.auth}`),
  fairness: z.enum(FAIRNESS).default(D.gateway.fairness).describe(`what weights share: compute (accelerator time) or requests (counts); default ${D.gateway.fairness}`),
  maxBodySize: size().default(D.gateway.maxBodySize).describe(`largest request body accepted (bytes, Ki, Mi, Gi); default ${D.gateway.maxBodySize}`),
  requestReadTimeout: duration().default('30s').describe('time a client has to send its request headers and body; slower clients get 408; default 30s'),
  mqtt: Mqtt.optional().describe('MQTT ingress; default off'),
  tracing: z
    .strictObject({
      endpoint: httpUrl().describe('OTLP/HTTP traces URL spans are posted to (JSON), e.g. http://127.0.0.1:4318/v1/traces; required'),
      sampleRate: z.number().min(0).max(1).default(1).describe('fraction of requests traced (a sampled client traceparent is always followed); default 1'),
      serviceName: z.string().min(1).default('modelguard').describe('service.name of the spans; default modelguard'),
    })
    .optional()
    .describe('OpenTelemetry spans per request (request, queue, backend) exported over OTLP; default off'),
  sources: Sources.optional(),
  adminTokens: z
    .array(z.strictObject({ sha256: sha256Hex().describe('hex sha256 of one admin token (never the token); required') }))
    .default(() => [])
    .describe('tokens the admin API accepts (Authorization: Bearer); required when the admin listener is not on loopback; default none'),
  audit: z
    .strictObject({
      destination: z.string().min(1).default('stdout').describe('stdout, stderr, or a file path (rotated by size); default stdout'),
      maxSize: size().default('10Mi').describe('a file is rotated when it reaches this size; default 10Mi'),
      maxFiles: z.int().min(1).default(5).describe('rotated files kept (file.1 … file.N); default 5'),
    })
    .optional()
    .describe('one JSON line per allow or deny decision; default off'),
  accessLog: AccessLog.optional().describe('one JSON line per request (see docs/observability.md); default off, `accessLog: {}` turns it on'),
  metrics: z
    .strictObject({ remoteWrite: RemoteWrite.optional().describe('push metrics to a Prometheus remote-write endpoint (see docs/observability.md); default off') })
    .optional()
    .describe('where metrics go besides GET /metrics on the admin listener; default only there'),
  proxies: z
    .array(
      z.strictObject({
        name: dnsName().describe('name of the proxy credential (shared by the replicas of one sidecar); required'),
        tokens: z
          .array(z.strictObject({ sha256: sha256Hex().describe('hex sha256 of one proxy token (never the token); required') }))
          .default(() => [])
          .describe('tokens this proxy presents to brokers; several allow rotation; default none (then certificateNames is required)'),
        certificateNames: z
          .array(CertificateName)
          .default(() => [])
          .describe('names of the client certificates that identify this proxy over brokerTls (DNS SANs, or the subject CN of a certificate without DNS SANs); default none (then tokens is required)'),
        apps: z
          .array(ref('App'))
          .default(() => [])
          .describe('apps whose identity this proxy may assert; default every app'),
      }).superRefine((p, ctx) => {
        if (p.tokens.length === 0 && p.certificateNames.length === 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['tokens'],
            message: withHint(`proxy "${p.name}" has neither tokens nor certificateNames, so nothing can identify it`, 'add tokens: [{ sha256: ... }] (`modelguard keys create` makes one), or certificateNames: [<CN or DNS name of its client certificate>] with spec.brokerTls'),
          });
        }
      }),
    )
    .default(() => [])
    .describe('proxies a broker trusts to assert app identity on its broker listener; default none (the broker listener refuses everything)'),
  nodeTokens: z
    .array(z.strictObject({ sha256: sha256Hex().describe('hex sha256 of one node token (never the token); required') }))
    .default(() => [])
    .describe('tokens brokers and proxies present to a controller; required when the controller listens beyond loopback; default none'),
  jwt: Jwt.optional().describe('accept signed JWTs (Authorization: Bearer) besides API keys; default off'),
  brokerTls: BrokerTls.optional().describe('serve the broker listener over HTTPS and require a client certificate signed by clientCa from every proxy; default off (plain HTTP)'),
});

export const GatewaySchema = z.strictObject({
  apiVersion,
  kind: z.literal('Gateway').describe('the kind of resource: Gateway; required'),
  metadata: Metadata,
  spec: GatewaySpecSchema.prefault({}).describe('the Gateway settings; all optional'),
});

export const KIND_SCHEMAS = {
  Backend: BackendSchema,
  Model: ModelSchema,
  ServiceGroup: ServiceGroupSchema,
  App: AppSchema,
  Gateway: GatewaySchema,
} as const satisfies Record<Kind, z.ZodType>;

/** Validated resources: defaults applied; durations and sizes still as written. */
export type Backend = z.output<typeof BackendSchema>;
export type Model = z.output<typeof ModelSchema>;
export type ServiceGroup = z.output<typeof ServiceGroupSchema>;
export type App = z.output<typeof AppSchema>;
export type Gateway = z.output<typeof GatewaySchema>;
export type Resource = Backend | Model | ServiceGroup | App | Gateway;

/** What a user writes (in YAML or in code): defaulted fields optional. */
export type BackendInput = z.input<typeof BackendSchema>;
export type ModelInput = z.input<typeof ModelSchema>;
export type ServiceGroupInput = z.input<typeof ServiceGroupSchema>;
export type AppInput = z.input<typeof AppSchema>;
export type GatewayInput = z.input<typeof GatewaySchema>;
export type ResourceInput = BackendInput | ModelInput | ServiceGroupInput | AppInput | GatewayInput;

/** Bytes of a validated size; throws on a value the schema would not have accepted. */
export function sizeBytes(value: string | number): number {
  const bytes = parseSize(value);
  if (bytes === undefined) throw new TypeError(`not a validated size: ${show(value)}`);
  return bytes;
}

/** Milliseconds of a validated duration; throws on a value the schema would not have accepted. */
export function durationMs(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new TypeError(`not a validated duration: ${show(value)}`);
  return ms;
}
