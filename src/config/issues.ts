/**
 * Configuration problems: the ConfigError the loader throws, its `file:line:column: message — hint`
 * format, and the hint helpers (closest name by edit distance, renamed options).
 */
import { HINT_SEP } from './values.ts';

/** File name used for resources built in code rather than read from a file. */
export const INLINE = '<inline>';

export interface ConfigIssue {
  /** File the problem is in (`<inline>` for resources given in code). */
  readonly file: string;
  /** 1-based line; absent when there is no source text. */
  readonly line?: number;
  /** 1-based column; absent when there is no source text. */
  readonly column?: number;
  /** What is wrong, starting with the resource and field (`App "cam" spec.rateLimit.burst: ...`). */
  readonly message: string;
  /** How to fix it, when we can tell. */
  readonly hint?: string;
}

/** `file:line:column`, or just `file` without a position. */
export function formatPlace(file: string, line?: number, column?: number): string {
  return line === undefined ? file : `${file}:${line}:${column ?? 1}`;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = formatPlace(issue.file, issue.line, issue.column);
  return `${where}: ${issue.message}${issue.hint === undefined ? '' : `${HINT_SEP}${issue.hint}`}`;
}

function compareIssues(a: ConfigIssue, b: ConfigIssue): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/** Sorted by file, then position (stable, so inline issues keep their order). */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort(compareIssues);
}

/** Thrown when configuration cannot be loaded; lists every problem found, not just the first. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const sorted = sortIssues(issues);
    const n = sorted.length;
    super(`invalid configuration (${n} ${n === 1 ? 'problem' : 'problems'}):\n${sorted.map(formatIssue).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = Object.freeze(sorted.map((i) => Object.freeze({ ...i })));
  }

  /** One `file:line:column: message — hint: ...` line per issue. */
  format(): string {
    return this.issues.map(formatIssue).join('\n');
  }
}

/** Builds an issue, splitting a `message — hint: ...` text and leaving out absent fields. */
export function makeIssue(file: string, pos: { line: number; column: number } | undefined, message: string, hint?: string): ConfigIssue {
  const at = message.indexOf(HINT_SEP);
  const text = at < 0 ? message : message.slice(0, at);
  const ownHint = at < 0 ? hint : message.slice(at + HINT_SEP.length);
  return {
    file,
    ...(pos === undefined ? {} : { line: pos.line, column: pos.column }),
    message: text,
    ...(ownHint === undefined ? {} : { hint: ownHint }),
  };
}

// ---- hints ----

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** The candidate closest to `word` (case-insensitive), if it is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** `did you mean "x"? valid keys: a, b` or just the list. */
export function suggest(word: string, candidates: readonly string[], what: string): string {
  const near = closest(word, candidates);
  const list = `${what}: ${candidates.join(', ')}`;
  return near === undefined ? list : `did you mean "${near}"? ${list}`;
}

/**
 * Options that moved or were renamed, keyed by `Kind:parent.path:key` (array indices as `[]`).
 * They fail like any unknown key, with a hint that says where the setting lives now.
 */
const RENAMED: Record<string, string> = {
  'ServiceGroup:spec:maxQueue': 'the queue length is now queue.maxLength',
  'ServiceGroup:spec:queueLength': 'the queue length is now queue.maxLength',
  'ServiceGroup:spec:maxLength': 'the queue length is now queue.maxLength',
  'ServiceGroup:spec:timeout': 'the longest queue wait is now queue.maxWait (the call timeout is on the Backend)',
  'ServiceGroup:spec:maxWait': 'the longest queue wait is now queue.maxWait',
  'ServiceGroup:spec:share': 'the share is now weight',
  'Backend:spec:replicas': 'replicas are now endpoints: [{ url, slots }]',
  'Backend:spec:url': 'URLs now go in endpoints: [{ url: ... }]',
  'Backend:spec:concurrency': 'concurrency is now per endpoint: endpoints[].slots',
  'Backend:spec:slots': 'slots are now per endpoint: endpoints[].slots',
  'Backend:spec:type': 'the wire protocol is now protocol',
  'Backend:spec.endpoints[]:concurrency': 'concurrency is now slots',
  'Backend:spec.endpoints[]:address': 'the address is now url (with scheme: http://host:port)',
  'Model:spec:private': 'use visibility: private',
  'Model:spec:modelName': 'the backend\'s name for the model is now backendModel',
  'Model:spec:fallback': 'cloud fallback is now offload: { backend, when: failover }',
  'Model:spec:maxBodyBytes': 'the body limit is now maxBodySize (bytes or "8Mi")',
  'App:spec:group': 'the group is now serviceGroup',
  'App:spec:apiKey': 'keys are now apiKeys: [{ sha256: ... }], holding the digest only (`modelguard keys create --app NAME`)',
  'App:spec:keys': 'keys are now apiKeys: [{ sha256: ... }], holding the digest only (`modelguard keys create --app NAME`)',
  'App:spec:allowedModels': 'grants are now models',
  'App:spec.apiKeys[]:key': 'store the digest, never the key: sha256 (`modelguard keys create --app NAME` prints it)',
  'App:spec.rateLimit:rps': 'the rate is now requestsPerSecond',
  'Gateway:spec:port': 'ports are now set per listener: listeners.http: "0.0.0.0:8080"',
  'Gateway:spec:listen': 'addresses are now set per listener: listeners.http: "0.0.0.0:8080"',
  'Gateway:spec:authentication': 'authentication is now auth: apiKey | none',
  'Gateway:spec:maxBodyBytes': 'the body limit is now maxBodySize (bytes or "8Mi")',
  '*:metadata:namespace': 'names are global per kind: drop namespace (the Kubernetes reader handles namespaces)',
};

/** The hint for an unknown `key` in the object at `parent` of a resource of `kind`. */
export function unknownKeyHint(kind: string, parent: readonly PropertyKey[], key: string, valid: readonly string[]): string {
  const parentPath = parent.map((p) => (typeof p === 'number' ? '[]' : String(p))).join('.').replace(/\.\[\]/g, '[]');
  return RENAMED[`${kind}:${parentPath}:${key}`] ?? RENAMED[`*:${parentPath}:${key}`] ?? suggest(key, valid, 'valid keys');
}

/** `spec.endpoints[0].url` from a zod path. */
export function pathText(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out === '' ? '' : '.'}${String(p)}`;
  return out;
}

// ---- issues tied to a source document ----

export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Position of the value at `path`, or of the key `key` inside the mapping at `path`. */
export type Locator = (path: readonly PropertyKey[], key?: string) => Position | undefined;

/** One resource document before validation, with what is needed to point at its text. */
export interface SourceDocument {
  readonly file: string;
  /** How to name the document when it has no kind and name: `document 2`, `resources[1]`. */
  readonly label: string;
  readonly value: unknown;
  /** Absent for resources given in code. */
  readonly locate?: Locator;
  /** The YAML text had syntax errors: only the kind and name are used (to avoid follow-on errors). */
  readonly broken?: boolean;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `Model "resnet50"`, or `Model (document 2)` / `document 2` when the name or kind is missing. */
export function subjectOf(doc: SourceDocument): string {
  const v = doc.value;
  const kind = isRecord(v) && typeof v.kind === 'string' ? v.kind : undefined;
  const name = isRecord(v) && isRecord(v.metadata) && typeof v.metadata.name === 'string' ? v.metadata.name : undefined;
  if (kind === undefined) return doc.label;
  return name === undefined ? `${kind} (${doc.label})` : `${kind} "${name}"`;
}

interface ReportOptions {
  /** The problem is an unknown key inside the mapping at the path: point at that key. */
  readonly key?: string;
  readonly hint?: string | undefined;
}

/** Collects errors and warnings, each pointing at a field of a source document. */
export class Reporter {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];

  error(doc: SourceDocument, path: readonly PropertyKey[], message: string, options: ReportOptions = {}): void {
    this.errors.push(this.make(doc, path, message, options));
  }

  warn(doc: SourceDocument, path: readonly PropertyKey[], message: string, options: ReportOptions = {}): void {
    this.warnings.push(this.make(doc, path, message, options));
  }

  private make(doc: SourceDocument, path: readonly PropertyKey[], message: string, options: ReportOptions): ConfigIssue {
    const field = pathText(options.key === undefined ? path : [...path, options.key]);
    const pos = doc.locate?.(path, options.key);
    return makeIssue(doc.file, pos, `${subjectOf(doc)}${field === '' ? '' : ` ${field}`}: ${message}`, options.hint);
  }
}
