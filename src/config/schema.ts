/**
 * The resource kinds of the configuration language as zod schemas; the TypeScript types are
 * inferred from them. Objects are strict (unknown keys fail). Every default lives in DEFAULTS, written
 * in the same syntax a user writes, and every field's `.describe()` says what it does and its default:
 * the loader shows that text as the hint when a value is wrong, and docs/configuration.md repeats it.
 */
import { z } from 'zod';
import { dnsName, duration, httpUrl, sha256Hex, size } from './primitives.ts';
import { parseSize, show, withHint } from './values.ts';
import { parseDuration } from '../core/duration.ts';
import { Credentials, Metadata, Sources, Tls, apiVersion, ref } from './schema-common.ts';
import { BACKEND_PROTOCOLS, CANCEL_IN_FLIGHT, D, OFFLOAD_WHEN, VISIBILITIES, type Kind } from './defaults.ts';
import { GatewaySchema } from './schema-gateway.ts';

export { ACCESS_LOG_LEVELS, API_VERSION, AUTH_MODES, BACKEND_PROTOCOLS, CANCEL_IN_FLIGHT, DEFAULTS, FAIRNESS, KINDS, OFFLOAD_WHEN, VISIBILITIES } from './defaults.ts';
export type { Kind } from './defaults.ts';
export { GatewaySchema, GatewaySpecSchema, JWT_ALGORITHMS } from './schema-gateway.ts';

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
      .describe(`consecutive failed probes, or server faults on requests, that take an endpoint (or one model on it) out of service; default ${D.backend.healthCheck.failureThreshold}`),
    panicThreshold: z
      .number()
      .min(0)
      .max(1)
      .default(D.backend.healthCheck.panicThreshold)
      .describe(
        `fraction of endpoints (0..1) that failing requests alone never eject below; under it traffic spreads over every endpoint the probes pass; default ${D.backend.healthCheck.panicThreshold}`,
      ),
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
  cancelInFlight: z
    .enum(CANCEL_IN_FLIGHT)
    .default(D.backend.cancelInFlight)
    .describe(
      `finish: a request whose client left (or whose deadline passed) while the server runs it keeps its slot until the server is done, and its group is charged in full; abort: the call is cancelled (for servers that really stop the work); default ${D.backend.cancelInFlight}`,
    ),
  retryOnReset: z
    .boolean()
    .default(D.backend.retryOnReset)
    .describe(`a call whose connection broke before any answer is sent once more to another replica when its deadline allows; default ${D.backend.retryOnReset}`),
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

const Batching = z.strictObject({
  maxBatchSize: z
    .int()
    .min(1)
    .describe('rows (dim 0 of the inputs) merged into one backend call at most; a request larger than this is sent alone; required'),
  maxDelay: duration()
    .default(D.model.batching.maxDelay)
    .describe(`longest a batch waits with a free slot for more requests when fewer than maxBatchSize rows are queued; default ${D.model.batching.maxDelay}`),
});

export const ModelSpecSchema = z.strictObject({
  backend: ref('Backend').describe('Backend that serves this model; required'),
  visibility: z.enum(VISIBILITIES).default(D.model.visibility).describe(`public: any app; private: only apps that list it in models; default ${D.model.visibility}`),
  backendModel: z.string().min(1).optional().describe('name the backend knows the model by; default metadata.name'),
  offload: Offload.optional().describe('edge-to-cloud offload; default none'),
  maxBodySize: size().optional().describe('largest request body for this model (bytes, Ki, Mi, Gi); default the Gateway maxBodySize'),
  batching: Batching.optional().describe('merge queued requests of this model, across apps, along dim 0 into one backend call (KServe v2 backends only); default off'),
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
      earlyRefusal: z
        .boolean()
        .default(D.serviceGroup.queue.earlyRefusal)
        .describe(`refuse at arrival (429 MG_QUEUE_FULL) a request whose predicted wait, from the measured drain rate, passes its deadline; false: it queues until maxWait; default ${D.serviceGroup.queue.earlyRefusal}`),
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
