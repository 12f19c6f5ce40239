/** A small RFC 6902 applier (add, replace, remove, test) for checking the webhook's patches and the fake API server. */
export interface PatchOp {
  op: string;
  path: string;
  value?: unknown;
}

const unescape = (s: string): string => s.replace(/~1/g, '/').replace(/~0/g, '~');

export function applyPatch<T>(doc: T, ops: readonly PatchOp[]): T {
  const root: { v: unknown } = { v: structuredClone(doc) };
  for (const op of ops) {
    const parts = op.path === '' ? [] : op.path.slice(1).split('/').map(unescape);
    let parent: Record<string, unknown> | unknown[] = root;
    let key: string = 'v';
    for (const part of parts) {
      const next = (parent)[key];
      if (typeof next !== 'object' || next === null) throw new Error(`${op.op} ${op.path}: no parent at ${part}`);
      parent = next as Record<string, unknown>;
      key = part;
    }
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      if (op.op === 'add') parent.splice(i, 0, structuredClone(op.value));
      else if (op.op === 'replace') parent[i] = structuredClone(op.value);
      else if (op.op === 'remove') parent.splice(i, 1);
      else if (op.op === 'test' && JSON.stringify(parent[i]) !== JSON.stringify(op.value)) throw new Error(`test ${op.path} failed`);
    } else {
      if (op.op === 'replace' && !(key in parent)) throw new Error(`replace ${op.path}: no such member`);
      if (op.op === 'add' || op.op === 'replace') parent[key] = structuredClone(op.value);
      else if (op.op === 'remove') delete parent[key];
      else if (op.op === 'test' && JSON.stringify(parent[key]) !== JSON.stringify(op.value)) throw new Error(`test ${op.path} failed`);
    }
  }
  return root.v as T;
}
