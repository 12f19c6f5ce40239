import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateKserveInfer } from '../../src/security/kserve-validate.ts';
import { MGError } from '../../src/core/errors.ts';
import { referenceValidate } from './kserve-validate-reference.ts';
import { seededRandom as prng } from '../../src/demo/service-time.ts';

const ok = (doc: unknown): void => validateKserveInfer(Buffer.from(JSON.stringify(doc)), undefined);
const rejects = (doc: unknown, pattern: RegExp, headerLength?: number, raw?: Buffer): void => {
  const body = raw ?? Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc));
  assert.throws(
    () => validateKserveInfer(body, headerLength),
    (e: unknown) => e instanceof MGError && e.code === 'MG_BAD_REQUEST' && pattern.test(e.message),
    `expected ${pattern}`,
  );
};
const input = (over: Record<string, unknown>): Record<string, unknown> => ({ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4], ...over });

test('valid requests pass: flat and nested data, every datatype family, outputs', () => {
  ok({ inputs: [input({})] });
  ok({ id: 'r1', inputs: [input({ data: [[1, 2, 3, 4]] })], outputs: [{ name: 'probabilities' }] });
  ok({ inputs: [input({ datatype: 'INT64', data: [1, -2, 3, 4] }), { name: 'b', shape: [2], datatype: 'BOOL', data: [true, false] }, { name: 's', shape: [1], datatype: 'BYTES', data: ['hi'] }] });
  ok({ inputs: [input({ shape: [0, 4], data: [] })] });
});

test('shape, datatype and data must agree', () => {
  rejects({ inputs: [input({ shape: [1, 3] })] }, /holds 3 elements, data has 4/);
  rejects({ inputs: [input({ datatype: 'FP33' })] }, /datatype must be one of/);
  rejects({ inputs: [input({ datatype: 'UINT8', data: [1, 2, 3, 256] })] }, /256 is not a valid UINT8/);
  rejects({ inputs: [input({ datatype: 'INT32', data: [1, 2, 3, 1.5] })] }, /not a valid INT32/);
  rejects({ inputs: [input({ data: [1, 2, 3, 'x'] })] }, /finite numbers/);
  rejects({ inputs: [input({ data: [1, 2, 3, null] })] }, /finite numbers/);
  rejects({ inputs: [input({ datatype: 'BOOL', data: [1, 0, 1, 0] })] }, /true or false/);
  rejects({ inputs: [input({ shape: [-1, 4] })] }, /non-negative integers/);
  rejects({ inputs: [input({ shape: [65536, 65536, 65536] })] }, /too large/);
  rejects({ inputs: [input({ shape: '1,4' })] }, /shape must be an array/);
  rejects({ inputs: [input({ data: undefined })] }, /has no data/);
  rejects({ inputs: [input({ shape: [4], data: [[[1, 2, 3, 4]]] })] }, /nested deeper than its shape/);
  rejects({ inputs: [input({ shape: [2, 2], data: [1, [2, 3], 4] })] }, /nested unevenly|flat or nested/);
  rejects({ inputs: [input({ shape: [1, 2, 2], data: [[1, 2], [3, 4]] })] }, /flat or nested as deep as the shape/);
  rejects({ inputs: [input({}), input({})] }, /given twice/);
});

test('envelope: JSON object with a non-empty inputs array', () => {
  rejects('{"inputs": [', /not valid JSON/);
  rejects([1, 2], /JSON object/);
  rejects({ inputs: [] }, /non-empty "inputs"/);
  rejects({ inputs: [input({ name: '' })] }, /name must be a non-empty string/);
  rejects({ inputs: [input({})], outputs: [{}] }, /outputs\[0\] needs a "name"/);
  rejects({ id: 7, inputs: [input({})] }, /"id" must be a string/);
});

test('binary-data extension: header length and declared sizes must match the bytes sent', () => {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }] }));
  validateKserveInfer(Buffer.concat([header, Buffer.alloc(16)]), header.length);
  rejects(null, /binary data is 15 bytes, the inputs declare 16/, header.length, Buffer.concat([header, Buffer.alloc(15)]));
  rejects(null, /does not fit/, 10_000, Buffer.concat([header, Buffer.alloc(16)]));
  const wrong = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 12 } }] }));
  rejects(null, /needs 16 bytes, binary_data_size is 12/, wrong.length, Buffer.concat([wrong, Buffer.alloc(12)]));
  rejects({ inputs: [input({ data: undefined, parameters: { binary_data_size: 16 } })] }, /no Inference-Header-Content-Length/);
});

// ---- The byte reader against the JSON.parse validation it replaced (kserve-validate-reference.ts) ----

type Outcome = { ok: true } | { ok: false; message: string };
function outcome(f: () => void): Outcome {
  try {
    f();
    return { ok: true };
  } catch (e) {
    if (!(e instanceof MGError) || e.code !== 'MG_BAD_REQUEST') throw e;
    return { ok: false, message: e.message };
  }
}

/** Random documents near the KServe shape, written with the freedoms JSON allows (spacing, number forms, escapes). */
function generator(rand: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const chance = (p: number): boolean => rand() < p;
  const space = (): string => (chance(0.8) ? '' : pick([' ', '\n', '\t', '\r\n  ', '  ']));
  const num = (v: number): string => {
    if (!Number.isFinite(v)) return pick(['1e400', '-1E999', '1' + '0'.repeat(400)]);
    const forms = [String(v)];
    if (Number.isInteger(v) && Math.abs(v) < 1e15) forms.push(`${v}.0`, `${v}e0`, `${v}0E-1`, `${v}.000e+0`);
    if (Object.is(v, 0)) forms.push('-0', '0.0e5');
    return pick(forms);
  };
  const str = (s: string): string => {
    let out = '"';
    for (const ch of s) {
      const code = ch.codePointAt(0) as number;
      if (ch === '"' || ch === '\\') out += `\\${ch}`;
      else if (code < 0x20) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else if (code < 0x10000 && chance(0.08)) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else if (ch === '/' && chance(0.5)) out += '\\/';
      else out += ch;
    }
    return out + '"';
  };
  const write = (v: unknown): string => {
    if (v === null) return 'null';
    if (typeof v === 'number') return num(v);
    if (typeof v === 'string') return str(v);
    if (typeof v === 'boolean') return String(v);
    if (Array.isArray(v)) return `[${space()}${v.map((x) => write(x)).join(`${space()},${space()}`)}${space()}]`;
    const entries = Object.entries(v as Record<string, unknown>);
    return `{${space()}${entries.map(([k, x]) => `${str(k)}${space()}:${space()}${write(x)}`).join(`${space()},${space()}`)}${space()}}`;
  };
  const datatypes = ['FP32', 'FP64', 'FP16', 'BF16', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'BOOL', 'BYTES'];
  const leaf = (dt: string): unknown => {
    if (chance(0.005)) return pick([null, {}, { a: 1 }, [], 'x', true, 1.5, -1, 256, 1e20, 2 ** 63, Infinity, -129, 4294967296]);
    if (dt === 'BOOL') return chance(0.5);
    if (dt === 'BYTES') return pick(['', 'a', 'héllo', '\u0000x', '"q"', '\ud83d\ude00']);
    if (dt.startsWith('FP') || dt === 'BF16') return pick([0, 1, -2.5, 0.1, 3.4e38, 1e-300, 123456789.125]);
    return chance(0.95) ? pick([0, 1, 2, 3, 100]) : pick([-1, 127, 255, 65535, -32768, 2147483647, 9007199254740991]);
  };
  const dataFor = (shape: number[], dt: string): unknown[] => {
    const total = shape.reduce((a, b) => a * b, 1);
    const flat = Array.from({ length: Math.min(total, 300) + (chance(0.05) ? pick([-1, 1]) : 0) }, () => leaf(dt));
    if (shape.length < 2 || shape.some((d) => d > 8) || chance(0.5)) return flat;
    // Nested row-major as deep as the shape (sometimes wrongly).
    const nest = (dims: number[], items: unknown[]): unknown[] => {
      if (dims.length <= 1) return items;
      const size = items.length / (dims[0] as number) || 1;
      return Array.from({ length: dims[0] as number }, (_, i) => nest(dims.slice(1), items.slice(i * size, (i + 1) * size)));
    };
    const nested = nest(shape, flat);
    return chance(0.1) ? [nested] : chance(0.1) ? [...nested, 7] : nested;
  };
  let inputs = 0;
  const input = (): unknown => {
    if (chance(0.03)) return pick([1, 'input', null, []]);
    const dt = chance(0.98) ? pick(datatypes) : pick(['fp32', 'FP33', 7, '', null]);
    const shape = chance(0.98) ? Array.from({ length: Math.floor(rand() * 4) }, () => Math.floor(rand() * 5)) : pick<unknown>([[-1, 4], [1.5], '1,4', [1, '4'], [65536, 65536, 65536], [1e20], null]);
    const fields: [string, unknown][] = [];
    if (chance(0.99)) fields.push(['name', chance(0.98) ? `${pick(['input', 'a', 'x\u00e9', 'in"put', 'a/b', 'tab\there'])}${chance(0.9) ? inputs++ : ''}` : pick(['', 3, null])]);
    if (chance(0.99)) fields.push(['shape', shape]);
    if (chance(0.99)) fields.push(['datatype', dt]);
    const binary = chance(0.05);
    if (binary) fields.push(['parameters', { binary_data_size: pick([0, 4, 8, 16, 16, 16, -1, 1.5, '16', null]), other: [1, { x: 2 }] }]);
    else if (chance(0.05)) fields.push(['parameters', pick<unknown>([[], 'p', { k: 'v' }])]);
    if (!binary || chance(0.1)) fields.push(['data', chance(0.95) && Array.isArray(shape) && shape.every((d) => Number.isInteger(d)) ? dataFor(shape as number[], String(dt)) : pick<unknown>(['data', null, 4, [], [[[1]]]])]);
    if (chance(0.1)) fields.push(['extra', { deep: [[[{}]]] }]);
    for (let i = fields.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [fields[i], fields[j]] = [fields[j] as [string, unknown], fields[i] as [string, unknown]];
    }
    return Object.fromEntries(fields);
  };
  return (): string => {
    const top: [string, unknown][] = [];
    if (chance(0.2)) top.push(['id', chance(0.9) ? 'r1' : 7]);
    if (chance(0.1)) top.push(['parameters', chance(0.8) ? { priority: 1 } : [1]]);
    if (chance(0.97)) top.push(['inputs', chance(0.97) ? Array.from({ length: 1 + Math.floor(rand() * 3) }, input) : pick<unknown>([[], {}, 'inputs'])]);
    if (chance(0.2)) top.push(['outputs', chance(0.9) ? [{ name: 'out' }, ...(chance(0.2) ? [pick<unknown>([{}, { name: 1 }, 'o'])] : [])] : { name: 'out' }]);
    if (chance(0.05)) top.push(['x', [1, 'two', { three: [null, true, false] }]]);
    for (let i = top.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [top[i], top[j]] = [top[j] as [string, unknown], top[i] as [string, unknown]];
    }
    const doc = chance(0.02) ? pick<unknown>([[1], 'doc', 3, null]) : Object.fromEntries(top);
    return `${space()}${write(doc)}${space()}`;
  };
}

/** Byte-level damage: what a broken client or an attacker sends. */
function mutate(rand: () => number, text: Buffer): Buffer {
  const bytes = [...text];
  const alphabet = Buffer.from('{}[],:"\\ 0123456789-+.eEtrufalsn\u0001\u000b\u000c\u001f\u007f\t\n');
  const n = 1 + Math.floor(rand() * 3);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rand() * (bytes.length + 1));
    const r = rand();
    if (r < 0.3) bytes.splice(at, 1);
    else if (r < 0.6) bytes.splice(at, 0, alphabet[Math.floor(rand() * alphabet.length)] as number);
    else if (r < 0.85) bytes[at] = alphabet[Math.floor(rand() * alphabet.length)] as number;
    else if (r < 0.95) bytes.splice(at, 0, 0xc3 + Math.floor(rand() * 0x3c)); // a stray UTF-8 lead byte
    else bytes.length = at; // cut short
  }
  return Buffer.from(bytes);
}

test('the byte reader gives the same answer as JSON.parse and a walk, on 30,000 generated and damaged bodies', () => {
  const seed = Number(process.env['MG_FUZZ_SEED'] ?? 20261206);
  const rand = prng(seed);
  const next = generator(rand);
  let accepted = 0;
  let refused = 0;
  let notJson = 0;
  let duplicates = 0;
  for (let n = 0; n < 30_000; n++) {
    const text = Buffer.from(next());
    let body = rand() < 0.4 ? mutate(rand, text) : text;
    let headerLength: number | undefined;
    if (rand() < 0.1) {
      // The binary-data extension: the JSON, then tensor bytes (the declared sizes are random too).
      headerLength = body.length + Math.floor(rand() * 3) - 1;
      body = Buffer.concat([body, Buffer.alloc(Math.floor(rand() * 5) * 4, 0x5b)]);
    }
    const theirs = outcome(() => referenceValidate(body, headerLength));
    const ours = outcome(() => validateKserveInfer(body, headerLength));
    const context = `seed ${seed} case ${n} (header length ${headerLength}): ${body.toString('utf8').slice(0, 400)}`;
    if (!ours.ok && /given twice in one object/.test(ours.message)) {
      // The one stricter rule: a key the checks read, twice in an object. The text must hold it twice.
      const key = /key "([^"]+)"/.exec(ours.message)?.[1] as string;
      const occurrences = body.toString('latin1').split(`"${key}"`).length - 1;
      assert.ok(occurrences >= 2 || body.includes('\\u'), `${context}\n${ours.message} but the key is not there twice`);
      duplicates++;
      continue;
    }
    assert.deepEqual(ours, theirs, context);
    if (ours.ok) accepted++;
    else if (/not valid JSON/.test(ours.message)) notJson++;
    else refused++;
  }
  // The corpus reaches every kind of answer, enough times to mean something.
  assert.ok(accepted > 3000 && refused > 3000 && notJson > 3000, `accepted ${accepted}, refused ${refused}, not JSON ${notJson}`);
  console.log(`byte reader vs JSON.parse: ${accepted} accepted, ${refused} refused by a check, ${notJson} not JSON, ${duplicates} repeated keys`);
});

test('a key read by the checks may not appear twice: JSON.parse keeps the last, RapidJSON (Triton) finds the first', () => {
  const inner = '{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}';
  // Each of these passes JSON.parse and a walk of its last values; the server may run the first ones.
  rejects(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,"x"]}],"inputs":[${inner}]}`, /key "inputs" given twice/);
  rejects(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4],"datatype":"FP32"}]}`, /key "datatype" given twice/);
  rejects(`{"inputs":[{"name":"input","shape":[1,4],"shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, /key "shape" given twice/);
  rejects(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","\\u0064ata":[1,2,3,4],"data":[1,2,3,4]}]}`, /key "data" given twice/);
  rejects(`{"id":"a","id":"b","inputs":[${inner}]}`, /key "id" given twice/);
  assert.doesNotThrow(() => referenceValidate(Buffer.from(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4],"datatype":"FP32"}]}`), undefined));
  // Keys the checks do not read may repeat, as anywhere in JSON.
  ok(JSON.parse(`{"inputs":[${inner}]}`));
  validateKserveInfer(Buffer.from(`{"x":1,"x":2,"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4],"p":{},"p":[]}]}`), undefined);
});

test('the byte reader: data before its datatype and shape, nesting far past any stack, and a large tensor', () => {
  validateKserveInfer(Buffer.from('{"inputs":[{"data":[[1,2],[3,4]],"name":"input","datatype":"INT8","shape":[2,2]}]}'), undefined);
  rejects('{"inputs":[{"data":[[1,2],[3,400]],"name":"input","datatype":"INT8","shape":[2,2]}]}', /inputs\[0\]: 400 is not a valid INT8/);
  // 100,000 levels in a key nobody reads: valid JSON, read without recursion.
  const deep = `{"extra":${'['.repeat(100_000)}${']'.repeat(100_000)},"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[1]}]}`;
  validateKserveInfer(Buffer.from(deep), undefined);
  rejects(deep.replace(']]],"inputs"', ']],"inputs"'), /not valid JSON/);
  const n = 3 * 224 * 224;
  const big = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [1, 3, 224, 224], datatype: 'FP32', data: Array.from({ length: n }, (_, i) => (i % 255) / 255) }] }));
  validateKserveInfer(big, undefined);
  rejects(null, /holds 150528 elements, data has 150527/, undefined, Buffer.from(big.toString().replace('0,0.00392', '0.00392')));
});
