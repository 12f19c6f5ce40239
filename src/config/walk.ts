/**
 * Navigation in the resource schemas by issue path: which keys an object accepts (for "did you mean"
 * hints), the `.describe()` text of a field (the hint for a wrong value), and the list of every
 * field (a test checks that each one is described and documented).
 */
import { z } from 'zod';

type Schema = z.core.$ZodType;

interface Resolved {
  /** The schema with optional/default/prefault/transform wrappers removed. */
  readonly schema: Schema;
  /** The first `.describe()` text found on the way in. */
  readonly description: string | undefined;
}

function resolve(schema: Schema): Resolved {
  let s = schema;
  let description = z.globalRegistry.get(s)?.description;
  for (;;) {
    let inner: Schema | undefined;
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodNullable) inner = s.unwrap();
    else if (s instanceof z.ZodPipe) inner = s.in;
    if (inner === undefined) return { schema: s, description };
    s = inner;
    description ??= z.globalRegistry.get(s)?.description;
  }
}

/** The field schema at `path` (object keys and array indices) below `root`. */
export function schemaAt(root: Schema, path: readonly PropertyKey[]): Resolved | undefined {
  let current = resolve(root);
  for (const key of path) {
    const s = current.schema;
    let next: Schema | undefined;
    if (s instanceof z.ZodObject && typeof key === 'string') next = (s.shape as Record<string, Schema>)[key];
    else if (s instanceof z.ZodArray && typeof key === 'number') next = s.element;
    else if (s instanceof z.ZodRecord) next = s.valueType;
    if (next === undefined) return undefined;
    current = resolve(next);
  }
  return current;
}

/** Keys the object at `path` accepts, or undefined when `path` is not an object. */
export function keysAt(root: Schema, path: readonly PropertyKey[]): string[] | undefined {
  const s = schemaAt(root, path)?.schema;
  return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
}

/** Whether the field at `path` takes integers only. */
export function isIntAt(root: Schema, path: readonly PropertyKey[]): boolean {
  const s = schemaAt(root, path)?.schema;
  return s instanceof z.ZodNumber && s.isInt;
}

export interface Field {
  /** Dotted path, arrays as `[]`: `spec.endpoints[].url`. */
  readonly path: string;
  readonly description: string | undefined;
}

/** Every field below `root`, parents before children. */
export function fields(root: Schema, prefix = ''): Field[] {
  const s = resolve(root).schema;
  if (s instanceof z.ZodArray) return fields(s.element, `${prefix}[]`);
  if (!(s instanceof z.ZodObject)) return [];
  const out: Field[] = [];
  const shape: Record<string, Schema> = s.shape;
  for (const [key, child] of Object.entries(shape)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    out.push({ path, description: resolve(child).description }, ...fields(child, path));
  }
  return out;
}
