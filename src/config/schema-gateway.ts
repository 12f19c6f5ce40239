/**
 * The Gateway kind: listeners and box-wide settings (auth, limits, MQTT, logs, traces, admin and
 * node tokens, proxies, JWT, remote write, broker TLS). Split from schema.ts for size; the kinds and
 * KIND_SCHEMAS stay there.
 */
import { z } from 'zod';
import { dnsName, duration, hostPort, httpUrl, mqttUrl, sha256Hex, size } from './primitives.ts';
import { show, splitHostPort, withHint } from './values.ts';
import { parseRate } from '../core/rate.ts';
import { DEFAULT_SOURCE_PORTS, parsePortRange } from '../core/levels.ts';
import { Credentials, Metadata, Sources, Tls, apiVersion, ref } from './schema-common.ts';
import { ACCESS_LOG_LEVELS, AUTH_MODES, D, FAIRNESS } from './defaults.ts';

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** The listener addresses with their defaults filled in (gRPC on the HTTP listener's host). */
export function resolveListeners(l: { http?: string | undefined; grpc?: string | undefined; admin?: string | undefined; broker?: string | undefined }): {
  http: string;
  grpc: string;
  admin: string;
  broker: string;
} {
  const http = l.http ?? D.gateway.listeners.http;
  const host = splitHostPort(http)?.host ?? '0.0.0.0';
  const grpc = l.grpc ?? `${host.includes(':') ? `[${host}]` : host}:${D.gateway.listeners.grpcPort}`;
  return { http, grpc, admin: l.admin ?? D.gateway.listeners.admin, broker: l.broker ?? D.gateway.listeners.broker };
}

const A = D.gateway.adminByRole;
const Listeners = z
  .strictObject({
    http: hostPort().default(D.gateway.listeners.http).describe(`inference over HTTP (KServe v2, OpenAI, pass-through); default ${D.gateway.listeners.http}`),
    grpc: hostPort().optional().describe(`inference over gRPC (KServe v2); default port ${D.gateway.listeners.grpcPort} on the http listener's host`),
    admin: hostPort()
      .optional()
      .describe(`metrics, health, dashboard and admin API; default per role: up ${A.up}, controller ${A.controller}, broker ${A.broker}, proxy ${A.proxy}`),
    broker: hostPort().default(D.gateway.listeners.broker).describe(`broker endpoint that proxies forward to; default ${D.gateway.listeners.broker}`),
  })
  .superRefine((given, ctx) => {
    const listeners = resolveListeners(given);
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

/** Shaping of the uplink by the host kernel (src/qos, docs/traffic-qos.md). */
const TrafficQos = z
  .strictObject({
    interface: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,14}$/, { error: (i) => withHint(`expected a network interface name (at most 15 characters), got ${show(i.input)}`, 'the uplink as `ip link` names it, e.g. eth0 or wwan0') })
      .describe('network interface of the uplink whose outgoing traffic is shaped, e.g. eth0 or wwan0; required'),
    uplinkRate: z
      .string()
      .regex(/^\d+(?:\.\d+)?(?:bit|[kKmMgG]bit)$/, { error: (i) => withHint(`expected a rate in bits per second, got ${show(i.input)}`, 'for example "10Mbit", "512kbit" or "1Gbit" (bytes per second are not accepted)') })
      .describe('what the uplink really carries upstream (its slowest hop), e.g. 10Mbit; required'),
    shapePercent: z
      .int()
      .min(50)
      .max(100)
      .default(95)
      .describe('shape to this percentage of uplinkRate, so that the queue forms in ModelGuard\'s qdisc and not in the modem; default 95'),
    priorityClasses: z
      .boolean()
      .default(true)
      .describe('one class per ServiceGroup priority level for calls to remote endpoints (separate connections per level, each from its own block of sourcePorts), higher levels first; with a single level there is nothing to separate; default true'),
    sourcePorts: z
      .string()
      .default(DEFAULT_SOURCE_PORTS)
      .describe(`local ports of the per-level connections, "first-last": a power of two of at least 256 ports starting at a multiple of its size, cut into 8 blocks (one per level); default ${DEFAULT_SOURCE_PORTS}`),
  })
  .superRefine((q, ctx) => {
    const ports = parsePortRange(q.sourcePorts);
    if (typeof ports === 'string') {
      ctx.addIssue({ code: 'custom', path: ['sourcePorts'], message: withHint(`${show(q.sourcePorts)}: ${ports}`, `for example "${DEFAULT_SOURCE_PORTS}" (4096 ports from 49152, 512 per level), away from ports any service listens on`) });
    }
    if (/^\d/.test(q.uplinkRate) && parseRate(q.uplinkRate) === undefined) {
      ctx.addIssue({ code: 'custom', path: ['uplinkRate'], message: withHint(`${q.uplinkRate} is below 8kbit`, 'give the uplink\'s real upstream rate, e.g. "2Mbit"') });
    }
  });

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
  trafficQoS: TrafficQos.optional().describe("shape the uplink's outgoing traffic with Linux traffic control so that inference goes ahead of bulk (needs CAP_NET_ADMIN; `modelguard qos plan` prints the commands); default off"),
});

export const GatewaySchema = z.strictObject({
  apiVersion,
  kind: z.literal('Gateway').describe('the kind of resource: Gateway; required'),
  metadata: Metadata,
  spec: GatewaySpecSchema.prefault({}).describe('the Gateway settings; all optional'),
});
