/**
 * Cluster objects → the plain resource documents the compiler takes. Kubernetes adds metadata the
 * configuration language does not have (namespace, uid, resourceVersion, managedFields, ...) and a
 * status; only name, labels and annotations are kept, so a resource compiles the same whether it came
 * from a file or from the API server. API keys named by `secretRef` are read from the Secret and
 * replaced by their sha256 here: the key itself never reaches a snapshot.
 */
import { createHash } from 'node:crypto';
import { API_VERSION } from '../config/schema.ts';
import type { Kind } from '../config/schema.ts';

/** The parts of a custom resource or a Secret this reads. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
    readonly generation?: number;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly spec?: unknown;
  readonly status?: unknown;
  /** Secrets only: base64 values. */
  readonly data?: Record<string, string>;
}

/** A resource document for compileResources(). */
export interface ResourceDoc {
  readonly apiVersion: string;
  readonly kind: Kind;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec: unknown;
}

/** A problem found while reading a resource from the cluster (a missing Secret, ...), reported like a config issue. */
export interface ResourceProblem {
  readonly kind: Kind;
  readonly name: string;
  readonly message: string;
  readonly hint?: string;
}

/** Annotations kubectl writes that say nothing about the resource. */
const DROPPED_ANNOTATIONS = new Set(['kubectl.kubernetes.io/last-applied-configuration']);

/** Reads one key of a Secret, decoded; undefined when the Secret or the key does not exist. */
export type SecretLookup = (name: string, key: string) => string | undefined;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Replaces `{ secretRef: { name, key } }` entries of a digest list by `{ sha256 }`, reporting unresolvable ones. */
function resolveDigests(list: unknown, field: string, secrets: SecretLookup, problem: (message: string, hint: string) => void): unknown {
  if (!Array.isArray(list)) return list;
  return list.map((entry: unknown, i) => {
    if (!isRecord(entry) || !('secretRef' in entry)) return entry;
    const ref = entry.secretRef;
    const { secretRef: _ref, ...rest } = entry;
    if (!isRecord(ref) || typeof ref.name !== 'string' || typeof ref.key !== 'string') {
      problem(`spec.${field}[${i}].secretRef: expected { name, key }`, 'name a Secret in the controller\'s namespace and a key in its data');
      return rest;
    }
    const value = secrets(ref.name, ref.key);
    if (value === undefined) {
      problem(
        `spec.${field}[${i}].secretRef: Secret "${ref.name}" has no key "${ref.key}" (or does not exist)`,
        `create it: kubectl create secret generic ${ref.name} --from-literal=${ref.key}=KEY`,
      );
      return rest;
    }
    // Trailing newlines come from `--from-file` of a file written by `echo`; keys never end in one.
    return { ...rest, sha256: createHash('sha256').update(value.replace(/\r?\n$/, ''), 'utf8').digest('hex') };
  });
}

/**
 * The document of one custom resource. Problems (unresolvable Secret references) are reported
 * through `problems`; the entry is then left without a digest, which the compiler also rejects.
 */
export function toResourceDoc(kind: Kind, obj: KubeObject, secrets: SecretLookup, problems: ResourceProblem[]): ResourceDoc {
  const name = obj.metadata?.name ?? '';
  const annotations = Object.entries(obj.metadata?.annotations ?? {}).filter(([k]) => !DROPPED_ANNOTATIONS.has(k));
  const problem = (message: string, hint: string): void => void problems.push({ kind, name, message, hint });
  let spec = obj.spec;
  if (isRecord(spec) && kind === 'App' && 'apiKeys' in spec) spec = { ...spec, apiKeys: resolveDigests(spec.apiKeys, 'apiKeys', secrets, problem) };
  if (isRecord(spec) && kind === 'Gateway' && 'adminTokens' in spec) spec = { ...spec, adminTokens: resolveDigests(spec.adminTokens, 'adminTokens', secrets, problem) };
  return {
    apiVersion: obj.apiVersion ?? API_VERSION,
    kind,
    metadata: {
      name,
      ...(obj.metadata?.labels === undefined ? {} : { labels: { ...obj.metadata.labels } }),
      ...(annotations.length === 0 ? {} : { annotations: Object.fromEntries(annotations) }),
    },
    spec,
  };
}

/** A SecretLookup over Secrets as the API returns them (data in base64). */
export function secretLookupFrom(secrets: ReadonlyMap<string, KubeObject>): SecretLookup {
  return (name, key) => {
    const b64 = secrets.get(name)?.data?.[key];
    return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
  };
}
