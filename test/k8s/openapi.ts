/**
 * A validator for the subset of OpenAPI v3 structural schemas the CRDs use (type, properties,
 * required, items, enum, pattern, bounds with boolean exclusives, lengths, int-or-string, oneOf of
 * required lists, additionalProperties), standing in for the API server's own validation.
 */
import type { Json } from './helpers.ts';

export function validate(schema: Json, value: unknown, at = ''): string[] {
  const errors: string[] = [];
  const fail = (m: string): number => errors.push(`${at || '.'}: ${m}`);
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (!(typeof value === 'string' || Number.isInteger(value))) fail('must be an integer or a string');
    else {
      const branch = (schema.anyOf as Json[] | undefined)?.find((b) => (b.type === 'string') === (typeof value === 'string'));
      if (branch !== undefined) errors.push(...validate(branch, value, at));
    }
    return errors;
  }
  const type = schema.type as string | undefined;
  const actual = Array.isArray(value) ? 'array' : value === null ? 'null' : Number.isInteger(value) ? 'integer' : typeof value;
  if (type !== undefined && !(type === actual || (type === 'number' && actual === 'integer'))) {
    fail(`must be ${type}, got ${actual}`);
    return errors;
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).includes(value)) fail(`must be one of ${(schema.enum as unknown[]).join(', ')}`);
  if (typeof value === 'string') {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern as string).test(value)) fail(`must match ${schema.pattern}`);
    if (schema.minLength !== undefined && value.length < schema.minLength) fail(`shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) fail(`longer than ${schema.maxLength}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && (schema.exclusiveMinimum === true ? value <= schema.minimum : value < schema.minimum)) fail(`below the minimum ${schema.minimum}`);
    if (schema.maximum !== undefined && (schema.exclusiveMaximum === true ? value >= schema.maximum : value > schema.maximum)) fail(`above the maximum ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) fail(`fewer than ${schema.minItems} items`);
    value.forEach((v, i) => errors.push(...validate(schema.items ?? {}, v, `${at}[${i}]`)));
  }
  if (actual === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of (schema.required as string[] | undefined) ?? []) if (!(r in obj)) fail(`${r} is required`);
    if (schema.oneOf !== undefined) {
      const matching = (schema.oneOf as Json[]).filter((b) => ((b.required as string[] | undefined) ?? []).every((r) => r in obj)).length;
      if (matching !== 1) fail(`must match exactly one of ${JSON.stringify(schema.oneOf)}`);
    }
    for (const [k, v] of Object.entries(obj)) {
      // The API server validates ObjectMeta itself, whatever the CRD says.
      if (at === '' && k === 'metadata') continue;
      const prop = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      // The API server prunes unknown fields rather than rejecting them; report them so tests see it.
      if (prop === undefined && schema['x-kubernetes-preserve-unknown-fields'] !== true) fail(`unknown field ${k} (pruned)`);
      else if (prop !== undefined) errors.push(...validate(prop, v, `${at}.${k}`));
    }
  }
  return errors;
}
