/**
 * Validation of resource documents, whatever their origin (YAML files or objects built in code):
 * envelope (apiVersion, kind), the kind's schema, then the checks across resources (references.ts).
 * Every problem is collected; nothing stops at the first.
 */
import type { z } from 'zod';
import { API_VERSION, KIND_SCHEMAS, KINDS } from './schema.ts';
import type { Kind, Resource } from './schema.ts';
import { Reporter, closest, isRecord, suggest, unknownKeyHint } from './issues.ts';
import type { ConfigIssue, SourceDocument } from './issues.ts';
import { isIntAt, keysAt, schemaAt } from './walk.ts';
import { show } from './values.ts';
import { checkReferences } from './references.ts';

/** A validated resource and the document it came from (for positions in later errors). */
export interface Located<R extends Resource = Resource> {
  readonly resource: R;
  readonly doc: SourceDocument;
}

/**
 * What the documents declare, including those that failed validation: references to them are not
 * reported as dangling, and duplicates among them are found in the same pass.
 */
export interface Declared {
  readonly names: Record<Kind, Set<string>>;
  readonly entries: { readonly kind: Kind; readonly name: string | undefined; readonly doc: SourceDocument }[];
}

export interface Validation {
  readonly resources: readonly Located[];
  readonly errors: readonly ConfigIssue[];
  readonly warnings: readonly ConfigIssue[];
}

function isKind(value: unknown): value is Kind {
  return typeof value === 'string' && (KINDS as readonly string[]).includes(value);
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
};

/** Reports one zod issue of the document's schema, in our words and with a hint. */
function reportZodIssue(rep: Reporter, doc: SourceDocument, kind: Kind, issue: z.core.$ZodIssue): void {
  const schema = KIND_SCHEMAS[kind];
  const path = issue.path;
  const field = schemaAt(schema, path);
  const describeHint = field?.description;
  const got = `got ${show(issue.input)}`;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const valid = keysAt(schema, path) ?? [];
      for (const key of issue.keys) rep.error(doc, path, 'unknown key', { key, hint: unknownKeyHint(kind, path, key, valid) });
      return;
    }
    case 'invalid_type': {
      if (issue.input === undefined) return rep.error(doc, path, 'is required', { hint: describeHint });
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      return rep.error(doc, path, `expected ${expected}, ${got}`, { hint: describeHint });
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = small ? issue.minimum : issue.maximum;
      if (issue.origin === 'array') {
        const what = `${small ? 'at least' : 'at most'} ${bound} ${bound === 1 ? 'entry' : 'entries'}`;
        return rep.error(doc, path, `expected ${what}, got ${Array.isArray(issue.input) ? issue.input.length : 0}`, { hint: describeHint });
      }
      if (issue.origin === 'string') return rep.error(doc, path, small ? 'must not be empty' : `must be at most ${bound} characters`, { hint: describeHint });
      const op = small ? (issue.inclusive === true ? '≥' : '>') : issue.inclusive === true ? '≤' : '<';
      const what = isIntAt(schema, path) ? 'an integer' : 'a number';
      return rep.error(doc, path, `expected ${what} ${op} ${bound}, ${got}`, { hint: describeHint });
    }
    case 'invalid_value': {
      const options = issue.values.map((v) => String(v));
      const expected = options.length === 1 ? show(issue.values[0]) : `one of ${options.join(', ')}`;
      const near = typeof issue.input === 'string' ? closest(issue.input, options) : undefined;
      return rep.error(doc, path, `expected ${expected}, ${got}`, { hint: near === undefined ? describeHint : `did you mean "${near}"?` });
    }
    default:
      return rep.error(doc, path, issue.message, { hint: describeHint });
  }
}

function validateDocument(rep: Reporter, doc: SourceDocument, declared: Declared): Located | undefined {
  const v = doc.value;
  if (!isRecord(v)) {
    rep.error(doc, [], `expected a mapping with apiVersion, kind, metadata and spec, got ${Array.isArray(v) ? 'a list' : show(v)}`, {
      hint: 'each document is one resource; separate resources with "---" instead of listing them',
    });
    return undefined;
  }
  const name = isRecord(v.metadata) && typeof v.metadata.name === 'string' ? v.metadata.name : undefined;
  if (isKind(v.kind) && (v.apiVersion === undefined || v.apiVersion === API_VERSION)) {
    if (name !== undefined) declared.names[v.kind].add(name);
    declared.entries.push({ kind: v.kind, name, doc });
  }
  if (doc.broken === true) return undefined;

  if (v.apiVersion !== undefined && v.apiVersion !== API_VERSION) {
    rep.error(doc, ['apiVersion'], `unknown apiVersion ${show(v.apiVersion)}`, {
      hint: `ModelGuard resources use apiVersion: ${API_VERSION}`,
    });
    return undefined;
  }
  if (v.kind === undefined) {
    rep.error(doc, [], 'kind is required', { hint: `valid kinds: ${KINDS.join(', ')}` });
    return undefined;
  }
  if (!isKind(v.kind)) {
    rep.error(doc, ['kind'], `unknown kind ${show(v.kind)}`, {
      hint: typeof v.kind === 'string' ? suggest(v.kind, KINDS, 'valid kinds') : `valid kinds: ${KINDS.join(', ')}`,
    });
    return undefined;
  }
  const kind = v.kind;
  // An empty `spec:` (all settings commented out) means "all defaults", not "spec must be a mapping".
  const input = v.spec === null ? { ...v, spec: undefined } : v;
  const result = KIND_SCHEMAS[kind].safeParse(input, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) reportZodIssue(rep, doc, kind, issue);
    return undefined;
  }
  return { resource: result.data, doc };
}

/** Validates documents one by one, then across resources. */
export function validateDocuments(docs: readonly SourceDocument[]): Validation {
  const rep = new Reporter();
  const names = { Backend: new Set<string>(), Model: new Set<string>(), ServiceGroup: new Set<string>(), App: new Set<string>(), Gateway: new Set<string>() };
  const declared: Declared = { names, entries: [] };
  const resources: Located[] = [];
  for (const doc of docs) {
    const located = validateDocument(rep, doc, declared);
    if (located !== undefined) resources.push(located);
  }
  checkReferences(rep, resources, declared);
  return { resources, errors: rep.errors, warnings: rep.warnings };
}
