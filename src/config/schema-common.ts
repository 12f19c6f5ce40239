/**
 * What every resource kind's schema shares: the kinds and enumerations, DEFAULTS, the metadata
 * envelope, references by name, and the TLS, credential and source-address blocks that Backend, App
 * and Gateway use. schema.ts (the kinds) and schema-gateway.ts build on these.
 */
import { z } from 'zod';
import { cidr, dnsName } from './primitives.ts';
import { show, withHint } from './values.ts';
import { API_VERSION, D, type Kind } from './defaults.ts';


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
