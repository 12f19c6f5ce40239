/**
 * Sealing a snapshot: its content hashed (canonical JSON, so equal content gives an equal hash
 * whatever the file layout), versioned and deep-frozen. Compiling seals what it builds; a node seals
 * the part of a snapshot the controller sends it, without the compiler or the schemas.
 */
import { createHash } from 'node:crypto';
import type { Snapshot } from '../core/snapshot.ts';

/** Object.freeze, all the way down. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** JSON with object keys sorted and undefined properties left out: one text per content. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The same snapshot under another version number (the hash covers content only, so it stays). */
export function withVersion(s: Snapshot, version: number): Snapshot {
  return s.version === version ? s : Object.freeze({ ...s, version });
}

/** Versions, hashes and freezes snapshot content (a compiled one, or a part of one for a node). */
export function sealSnapshot(content: Omit<Snapshot, 'version' | 'hash'>, version: number): Snapshot {
  const hash = createHash('sha256').update(canonicalJson(content)).digest('hex');
  return deepFreeze({ version, hash, ...content });
}
