/**
 * The configuration language's constants: its API version, kinds, enumerations and every default,
 * with no schema library, so the roles and the CLI read them without loading zod.
 */
import { DEFAULT_GROUP } from '../core/snapshot.ts';
import type { AccessLogLevel, AuthMode, BackendProtocol, Fairness, Visibility } from '../core/snapshot.ts';

export const API_VERSION = 'modelguard.io/v1alpha1';
export const KINDS = ['Backend', 'Model', 'ServiceGroup', 'App', 'Gateway'] as const;
export type Kind = (typeof KINDS)[number];

export const BACKEND_PROTOCOLS = ['kserve-v2-http', 'kserve-v2-grpc', 'openai', 'http'] as const satisfies readonly BackendProtocol[];
export const VISIBILITIES = ['public', 'private'] as const satisfies readonly Visibility[];
export const CANCEL_IN_FLIGHT = ['finish', 'abort'] as const;
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
    cancelInFlight: 'finish',
    retryOnReset: true,
    healthCheck: { interval: '5s', timeout: '1s', failureThreshold: 3, panicThreshold: 0.5 },
  },
  model: { visibility: 'public', offloadWhen: 'saturated', batching: { maxDelay: '5ms' } },
  offload: { allowPrivate: false, breaker: { failureThreshold: 3, slowCall: '1s', openFor: '1s' } },
  credentials: { header: 'authorization', scheme: 'Bearer' },
  serviceGroup: { priority: 0, weight: 1, reservedSlots: 0, queue: { maxLength: 100, maxWait: '5s', earlyRefusal: true } },
  app: { serviceGroup: DEFAULT_GROUP },
  gateway: {
    name: 'default',
    // grpc: port 8081 on the HTTP listener's host. admin: per role (adminByRole), `up`'s shown here.
    listeners: { http: '0.0.0.0:8080', grpcPort: 8081, admin: '127.0.0.1:9460', broker: '0.0.0.0:8010' },
    /** Admin listener of each role when listeners.admin is not set: one port each, so the roles share a box (9090 is Prometheus's). */
    adminByRole: { up: '127.0.0.1:9460', controller: '127.0.0.1:9461', broker: '127.0.0.1:9462', proxy: '127.0.0.1:9463' },
    auth: 'apiKey',
    fairness: 'compute',
    maxBodySize: '8Mi',
    mqtt: { url: 'mqtt://127.0.0.1:1883', embedded: false, qos: 1, topicPrefix: 'modelguard/v1' },
    accessLog: { enabled: true, level: 'info', sampleRate: 1, destination: 'stdout' },
  },
} as const;

export const D = DEFAULTS;
