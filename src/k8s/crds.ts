/**
 * CustomResourceDefinitions generated from the zod schemas the file loader uses (src/config/schema*.ts),
 * so a field added there appears in the cluster's schema with the next `scripts/gen-crds.ts` run, and
 * test/k8s/crds.test.ts fails until it is run. zod's JSON Schema is turned into a Kubernetes
 * *structural* schema: every node typed, no $ref, no defaults (the compiler applies them, so a resource
 * reads back as written), `additionalProperties: false` dropped (the API server prunes unknown fields and
 * `kubectl` rejects them with strict field validation; the controller's own validation rejects them too),
 * exclusive bounds in OpenAPI v3.0 form, and the configuration language's value types (durations,
 * sizes, names, ...) as strings with patterns, recognised by probing each custom schema with samples.
 */
import { z } from 'zod';
import { API_VERSION, KINDS, KIND_SCHEMAS } from '../config/schema.ts';
import type { Kind } from '../config/schema.ts';

export const GROUP = API_VERSION.split('/')[0] ?? 'modelguard.io';
export const VERSION = API_VERSION.split('/')[1] ?? 'v1alpha1';

type Json = Record<string, unknown>;

export interface KindNames {
  readonly kind: Kind;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
}

/** Resource names of each kind in the API (plural is the URL segment). */
export const KIND_NAMES: Readonly<Record<Kind, KindNames>> = {
  Backend: { kind: 'Backend', plural: 'backends', singular: 'backend', shortNames: ['mgbe'] },
  Model: { kind: 'Model', plural: 'models', singular: 'model', shortNames: ['mgmodel'] },
  ServiceGroup: { kind: 'ServiceGroup', plural: 'servicegroups', singular: 'servicegroup', shortNames: ['mgsg'] },
  App: { kind: 'App', plural: 'apps', singular: 'app', shortNames: ['mgapp'] },
  Gateway: { kind: 'Gateway', plural: 'gateways', singular: 'gateway', shortNames: ['mggw'] },
};

const ACCEPTED = '.status.conditions[?(@.type=="Accepted")]';

/** `kubectl get` columns per kind, after NAME; Accepted, Reason and Age are added to every kind. */
const COLUMNS: Readonly<Record<Kind, readonly Json[]>> = {
  Backend: [{ name: 'Protocol', type: 'string', jsonPath: '.spec.protocol' }, { name: 'Endpoint', type: 'string', jsonPath: '.spec.endpoints[0].url' }],
  Model: [{ name: 'Backend', type: 'string', jsonPath: '.spec.backend' }, { name: 'Visibility', type: 'string', jsonPath: '.spec.visibility' }],
  ServiceGroup: [{ name: 'Priority', type: 'integer', jsonPath: '.spec.priority' }, { name: 'Weight', type: 'number', jsonPath: '.spec.weight' }],
  App: [{ name: 'ServiceGroup', type: 'string', jsonPath: '.spec.serviceGroup' }],
  Gateway: [{ name: 'Auth', type: 'string', jsonPath: '.spec.auth' }],
};

// ---- value types of the language, as OpenAPI ----

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const VALUE_TYPES: Readonly<Record<string, Json>> = {
  size: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^[0-9]+(Ki|Mi|Gi)?$' }] },
  sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
  cidr: { type: 'string', pattern: '^[0-9a-fA-F:.]+(/[0-9]{1,3})?$' },
  hostPort: { type: 'string', pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$' },
  httpUrl: { type: 'string', pattern: '^https?://' },
  mqttUrl: { type: 'string', pattern: '^(mqtts?|wss?)://' },
  duration: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$' },
  name: { type: 'string', maxLength: 63, pattern: DNS_LABEL },
};

/**
 * Which value type a custom zod schema is, by the samples it accepts (most specific first). A custom
 * schema that accepts none of them is a new value type: this throws so it gets a pattern here.
 */
export function valueTypeOf(schema: z.ZodType): string {
  const ok = (v: unknown): boolean => schema.safeParse(v).success;
  if (ok(1024)) return 'size';
  if (ok('a'.repeat(64))) return 'sha256';
  if (ok('10.0.0.0/8')) return 'cidr';
  if (ok('0.0.0.0:80')) return 'hostPort';
  if (ok('http://example.com')) return 'httpUrl';
  if (ok('mqtt://example.com')) return 'mqttUrl';
  if (ok('2s') && !ok('abc')) return 'duration';
  if (ok('abc')) return 'name';
  throw new Error('a custom schema in src/config/schema*.ts matches no known value type: add it to VALUE_TYPES in src/k8s/crds.ts');
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Rewrites one zod JSON Schema node (already carrying VALUE_TYPES for custom types) into structural form. */
export function structural(node: Json, at = '$'): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case '$schema':
      case 'default':
      case 'propertyNames':
        break;
      case 'additionalProperties':
        if (value !== false) out[key] = structural(value as Json, `${at}.*`);
        break;
      case 'properties':
        out[key] = Object.fromEntries(Object.entries(value as Record<string, Json>).map(([k, v]) => [k, structural(v, `${at}.${k}`)]));
        break;
      case 'items':
        out[key] = structural(value as Json, `${at}[]`);
        break;
      case 'anyOf':
        // Only the int-or-string form is structural inside a typed tree.
        if (node['x-kubernetes-int-or-string'] !== true) throw new Error(`${at}: a union is not a structural schema; give the field one type`);
        out[key] = value;
        break;
      case 'const':
        out.enum = [value];
        if (node.type === undefined) out.type = typeof value;
        break;
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        out[key === 'exclusiveMinimum' ? 'minimum' : 'maximum'] = value;
        out[key] = true;
        break;
      case 'minimum':
      case 'maximum':
        if (Math.abs(value as number) < MAX_SAFE) out[key] = value;
        break;
      default:
        out[key] = value;
    }
  }
  if (out.type === 'object' && out.properties === undefined && out.additionalProperties === undefined) out['x-kubernetes-preserve-unknown-fields'] = true;
  if (out.type === undefined && out['x-kubernetes-int-or-string'] !== true) throw new Error(`${at}: no type in the generated schema`);
  return out;
}

/** The zod JSON Schema of a kind's spec (input side: defaulted fields are optional), value types filled in. */
function specJsonSchema(kind: Kind): Json {
  const spec = (KIND_SCHEMAS[kind] as z.ZodType).def as unknown as { shape?: { spec: z.ZodType }; in?: { def: { shape: { spec: z.ZodType } } } };
  // ModelSchema is a pipe (its transform derives backendModel): its input side holds the object.
  const specSchema = spec.shape?.spec ?? spec.in?.def.shape.spec;
  if (specSchema === undefined) throw new Error(`${kind}: no spec in the schema`);
  return z.toJSONSchema(specSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const def = ctx.zodSchema._zod.def as { type: string; in?: z.ZodType };
      const custom = def.type === 'custom' ? ctx.zodSchema : def.type === 'pipe' && def.in?._zod.def.type === 'custom' ? def.in : undefined;
      if (custom !== undefined) Object.assign(ctx.jsonSchema, VALUE_TYPES[valueTypeOf(custom as z.ZodType)]);
    },
  });
}

/**
 * Kubernetes-only alternatives: an App's apiKeys and a Gateway's adminTokens may name a key in a
 * Secret instead of its digest. KubernetesSource reads the Secret and hands the compiler the sha256, so
 * the file language is unchanged and the key itself never enters a snapshot.
 */
const SECRET_REF: Json = {
  type: 'object',
  description: 'a key of a Secret in the controller\'s namespace holding the raw key; it is hashed when read (Kubernetes only)',
  properties: { name: { type: 'string', description: 'Secret name; required' }, key: { type: 'string', description: 'key inside the Secret\'s data; required' } },
  required: ['name', 'key'],
};

function allowSecretRef(list: Json | undefined): void {
  const item = list?.items as Json | undefined;
  if (item === undefined) throw new Error('expected a list of digests');
  item.properties = { ...(item.properties as Json), secretRef: SECRET_REF };
  delete item.required;
  item.oneOf = [{ required: ['sha256'] }, { required: ['secretRef'] }];
}

const CONDITION: Json = {
  type: 'object',
  properties: {
    type: { type: 'string', description: 'Accepted' },
    status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
    reason: { type: 'string', description: 'Accepted, or Invalid' },
    message: { type: 'string', description: 'what is wrong and the hint to fix it, when Invalid' },
    observedGeneration: { type: 'integer', description: 'metadata.generation the condition was computed from' },
    lastTransitionTime: { type: 'string', format: 'date-time' },
  },
  required: ['type', 'status'],
};

const STATUS: Json = {
  type: 'object',
  description: 'written by the controller',
  properties: {
    observedGeneration: { type: 'integer' },
    conditions: { type: 'array', items: CONDITION, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
  },
};

/** The CRD object of one kind. */
export function crdFor(kind: Kind): Json {
  const names = KIND_NAMES[kind];
  const spec = structural(specJsonSchema(kind), `${kind}.spec`);
  const props = spec.properties as Record<string, Json> | undefined;
  if (kind === 'App') allowSecretRef(props?.apiKeys);
  if (kind === 'Gateway') allowSecretRef(props?.adminTokens);
  const specRequired = Array.isArray(spec.required) && spec.required.length > 0;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'modelguard' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural: names.plural, singular: names.singular, shortNames: [...names.shortNames], categories: ['modelguard'] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            ...COLUMNS[kind],
            { name: 'Accepted', type: 'string', jsonPath: `${ACCEPTED}.status` },
            { name: 'Reason', type: 'string', jsonPath: `${ACCEPTED}.reason` },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: `ModelGuard ${kind} (see docs/configuration.md)`,
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: { ...spec, description: `the ${kind} settings` },
                status: STATUS,
              },
              ...(specRequired ? { required: ['spec'] } : {}),
            },
          },
        },
      ],
    },
  };
}

/** Every CRD, in KINDS order. */
export function allCrds(): Json[] {
  return KINDS.map(crdFor);
}

/** The committed files under deploy/base/crds/: file name → YAML text. */
export function renderCrdFiles(stringify: (value: unknown) => string): Map<string, string> {
  const header = '# Generated by `node --import tsx scripts/gen-crds.ts` from src/config/schema.ts: do not edit.\n';
  return new Map(KINDS.map((kind) => [`${KIND_NAMES[kind].plural}.yaml`, header + stringify(crdFor(kind))]));
}
