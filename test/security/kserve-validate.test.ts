import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateKserveInfer } from '../../src/security/kserve-validate.ts';
import { MGError } from '../../src/core/errors.ts';

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
