/**
 * Shared by the batching tests and bench/batching.ts: a gateway whose model server is reached as two
 * Models, `demo` (never merged) and `batched` (Model.spec.batching), callers whose every row is
 * different so that each answer can be checked against the caller's own rows, and a closed loop
 * that records them.
 */
import type { Pool } from 'undici';
import { keyFor, send, type SetupDef } from '../helpers/harness.ts';

export const API = 'modelguard.io/v1alpha1';

/** The `batched` Model: the same backend model as `demo`, with batching on. */
export function batchedModel(maxBatchSize: number, maxDelay: string, name = 'batched', backendModel = 'demo'): NonNullable<SetupDef['extra']>[number] {
  return { apiVersion: API, kind: 'Model', metadata: { name }, spec: { backend: 'accel', backendModel, batching: { maxBatchSize, maxDelay } } };
}

/** A KServe v2 request of `rows` rows [k+r, k+r+1, k+r+2, k+r+3] with its own id. */
export function rowsBody(id: string, k: number, rows: number): string {
  const data: number[] = [];
  for (let r = 0; r < rows; r++) data.push(k + r, k + r + 1, k + r + 2, k + r + 3);
  return JSON.stringify({ id, inputs: [{ name: 'input', shape: [rows, 4], datatype: 'FP32', data }] });
}

/** What the simulated model answers for those rows: per row sum, mean, min, max. */
export function expectedOutput(k: number, rows: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const x = k + r;
    out.push(4 * x + 6, x + 1.5, x, x + 3);
  }
  return out;
}

export interface RowAnswer {
  status: number;
  /** performance.now() when the answer completed. */
  at: number;
  ms: number;
  rows: number;
  /** The answer carried the caller's own id and exactly its own rows' outputs. */
  own: boolean;
  body: string;
}

let seq = 0;

/** A request of `rows` rows through `model`; checks the answer against the caller's own rows. */
export async function ask(pool: Pool, model: string, group: string, rows: number): Promise<RowAnswer> {
  const k = ++seq * 8;
  const id = `${group}-${k}`;
  const a = await send(pool, `/v2/models/${model}/infer`, { key: keyFor(group), body: rowsBody(id, k, rows) });
  let own = false;
  if (a.status === 200) {
    const doc = JSON.parse(a.body) as { id?: string; outputs?: { shape: number[]; data: number[] }[] };
    const out = doc.outputs?.[0];
    own = doc.id === id && out !== undefined && out.shape[0] === rows && JSON.stringify(out.data) === JSON.stringify(expectedOutput(k, rows));
  }
  return { status: a.status, at: a.at, ms: a.ms, rows, own, body: a.body };
}

/** Keeps `concurrency` requests of `rows` rows outstanding until `until` resolves. */
export async function rowLoop(pool: Pool, model: string, group: string, concurrency: number, until: Promise<unknown>, rows = 1): Promise<RowAnswer[]> {
  let running = true;
  void until.then(() => (running = false));
  const answers: RowAnswer[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (running) answers.push(await ask(pool, model, group, rows));
    }),
  );
  return answers;
}
