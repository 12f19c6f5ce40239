/**
 * What every resource kind's schema shares: the kinds and enumerations, DEFAULTS, the metadata
 * envelope, references by name, and the TLS, credential and source-address blocks that Backend, App
 * and Gateway use. schema.ts (the kinds) and schema-gateway.ts build on these.
 */
import { z } from 'zod';
import { DEFAULT_GROUP } from '../core/snapshot.ts';
import type { AccessLogLevel, AuthMode, BackendProtocol, Fairness, Visibility } from '../core/snapshot.ts';
import { cidr, dnsName, show, withHint } from './primitives.ts';

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

// ---- common envelope ----

export const Metadata = z
  .strictObject({
    name: dnsName().describe('unique name within its kind (DNS-1123 label: a-z, 0-9 and "-", at most 63); required'),
    labels: z.record(z.string(), z.string()).optional().describe('free-form string labels for tools; no default'),
    annotations: z.record(z.string(), z.string()).optional().describe('free-form string notes for tools; no default'),
  })
  .describe('identity of the resource; required (name)');

export const apiVersion = z
  .literal(API_VERSION)
  .default(API_VERSION)
  .describe(`schema version of the document, the only one there is; default ${API_VERSION}`);

/** A reference by name to a resource of `_kind` (resolved across resources in references.ts). */
export const ref = (_kind: Kind) => dnsName();

/** TLS for the link to a backend over https:// (usually the cloud). Files are PEM, read when the link is built. */
export const Tls = z
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
export const Credentials = z
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

/** Source-address rules: a request must match `allow` (when given) and must not match `deny`. */
export const Sources = z
  .strictObject({
    allow: z.array(cidr()).default(() => []).describe('addresses or CIDRs allowed to call; empty allows every address; default empty'),
    deny: z.array(cidr()).default(() => []).describe('addresses or CIDRs refused, checked before allow; default empty'),
  })
  .describe('source-address firewall (IPv4 and IPv6 CIDRs); default none');
