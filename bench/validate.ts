/**
 * The KServe v2 infer validation on its own, in one process: the byte reader ModelGuard uses
 * (src/security/kserve-validate.ts) against the JSON.parse-and-walk it replaced
 * (test/security/kserve-validate-reference.ts), on the same bodies, in alternating order:
 *
 *   small   the overhead benchmark's body (80 bytes: one FP32 [1,4] tensor)
 *   image   one FP32 [1,3,224,224] tensor as JSON numbers (150,528 values, about 1.3 MB)
 *   ints    one INT64 [1,4096] tensor
 *
 * Per body: time per validation (median of --rounds, each after a warm-up), and the heap it
 * allocates (bytes per validation, from the used heap's growth right after a full collection; the
 * young generation is made large enough that no collection runs inside a measured loop).
 *
 *   node --expose-gc --max-semi-space-size=128 --min-semi-space-size=128 --import tsx bench/validate.ts [--rounds 5]
 */
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { validateKserveInfer } from '../src/security/kserve-validate.ts';
import { referenceValidate } from '../test/security/kserve-validate-reference.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);

const bodies: [string, Buffer, number][] = [
  ['small', Buffer.from('{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'), 200_000],
  [
    'image',
    Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [1, 3, 224, 224], datatype: 'FP32', data: Array.from({ length: 150_528 }, (_, i) => Math.round(((i * 7919) % 1000) * 0.997) / 1000) }] })),
    20,
  ],
  ['ints', Buffer.from(JSON.stringify({ inputs: [{ name: 'ids', shape: [1, 4096], datatype: 'INT64', data: Array.from({ length: 4096 }, (_, i) => (i * 104729) % 50257) }] })), 500],
];

type Validate = (body: Buffer, headerLength: number | undefined) => void;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const ways: [string, Validate][] = [
  ['byte reader', validateKserveInfer],
  ['JSON.parse + walk', referenceValidate],
];

/**
 * Heap bytes one validation allocates: how much more the used heap grows, right after a full
 * collection, over 2n validations than over n (which cancels what reading the figure costs); the
 * median of five tries.
 */
function allocated(f: Validate, body: Buffer, n: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return NaN;
  const growth = (k: number): number => {
    gc();
    const before = getHeapStatistics().used_heap_size;
    for (let i = 0; i < k; i++) f(body, undefined);
    return getHeapStatistics().used_heap_size - before;
  };
  const tries: number[] = [];
  for (let t = 0; t < 5; t++) tries.push(growth(2 * n) - growth(n));
  return median(tries) / n;
}

function nsPer(f: Validate, body: Buffer, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(body, undefined);
  return Number(process.hrtime.bigint() - t0) / n;
}

const format = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);

const semi = process.execArgv.some((a) => a.startsWith('--min-semi-space-size'));
console.log(`KServe v2 infer validation, median of ${rounds} rounds (node ${process.version})`);
if (!(globalThis as { gc?: unknown }).gc) console.log('note: heap figures need --expose-gc');
else if (!semi) console.log('note: without --min-semi-space-size=128 a collection may run inside a measured loop and the heap figures are rough');
console.log(`${'body'.padEnd(8)} ${'bytes'.padStart(9)}  ${'way'.padEnd(18)} ${'time'.padStart(10)} ${'heap/validation'.padStart(16)}`);
for (const [name, body, n] of bodies) {
  for (const [, f] of ways) nsPer(f, body, Math.max(1, n / 4)); // warm-up
  const times = new Map<string, number[]>(ways.map(([w]) => [w, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ways : [...ways].reverse();
    for (const [w, f] of order) times.get(w)?.push(nsPer(f, body, n));
  }
  const rows = ways.map(([w, f]) => ({ w, ns: median(times.get(w) as number[]), heap: allocated(f, body, name === 'small' ? 2000 : name === 'ints' ? 50 : 4) }));
  for (const row of rows) {
    console.log(`${name.padEnd(8)} ${String(body.length).padStart(9)}  ${row.w.padEnd(18)} ${format(row.ns).padStart(10)} ${`${Math.round(row.heap).toLocaleString('en')} B`.padStart(16)}`);
  }
  const [ours, theirs] = rows as [(typeof rows)[0], (typeof rows)[0]];
  console.log(`${''.padEnd(8)} ${''.padStart(9)}  byte reader: ${(ours.ns / theirs.ns).toFixed(2)}× the time, ${(ours.heap / theirs.heap).toFixed(3)}× the heap`);
}
