/** The gRPC ⇄ JSON tensor translation: every datatype both ways, raw and typed, and its refusals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ELEMENT_SIZE, type KserveDatatype } from '../../src/core/kserve.ts';
import { inferRequestFromJson, inferRequestToJson, inferResponseFromJson, inferResponseToJson } from '../../src/grpc/kserve.ts';
import { dataToRaw, rawToData, WireError, type JsonElement } from '../../src/grpc/tensors.ts';
import { wire } from '../../src/grpc/wire.ts';

const SAMPLES: Record<KserveDatatype, JsonElement[]> = {
  BOOL: [true, false, true],
  UINT8: [0, 7, 255],
  UINT16: [0, 300, 65535],
  UINT32: [0, 70000, 4294967295],
  UINT64: [0, 2 ** 40, Number.MAX_SAFE_INTEGER],
  INT8: [-128, 0, 127],
  INT16: [-32768, 5, 32767],
  INT32: [-2147483648, 9, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, -1, Number.MAX_SAFE_INTEGER],
  FP16: [1, -2, 65504],
  BF16: [1, -2, 0.5],
  FP32: [1.5, -0.25, 1e10],
  FP64: [Math.PI, -1e300, 0],
  BYTES: ['', 'héllo', 'a,b'],
};

describe('tensor translation', () => {
  it('raw encoding round-trips every datatype, with the documented sizes', () => {
    for (const [dt, data] of Object.entries(SAMPLES) as [KserveDatatype, JsonElement[]][]) {
      const raw = dataToRaw(data, dt, dt);
      if (dt !== 'BYTES') assert.equal(raw.length, data.length * ELEMENT_SIZE[dt], dt);
      assert.deepEqual(rawToData(raw, dt, data.length, dt), dt === 'FP32' ? data.map((v) => Math.fround(v as number)) : data, dt);
    }
    assert.deepEqual([...dataToRaw([1, -2, 65504], 'FP16', 'h')], [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]);
    assert.deepEqual([...dataToRaw(['hi'], 'BYTES', 'b')], [2, 0, 0, 0, 0x68, 0x69]);
  });

  it('a typed request (every datatype with typed contents) and its JSON form are the same tensors', () => {
    const inputs = (Object.entries(SAMPLES) as [KserveDatatype, JsonElement[]][]).filter(([dt]) => dt !== 'FP16' && dt !== 'BF16').map(([dt, data]) => ({ name: `in_${dt}`, datatype: dt, shape: [1, data.length], data: dt === 'FP32' ? data.map((v) => Math.fround(v as number)) : data }));
    const body = Buffer.from(JSON.stringify({ id: 'x', parameters: { p: 3, q: 'z', r: true }, inputs, outputs: [{ name: 'out' }] }));
    const encoded = inferRequestFromJson(body, undefined, 'm', '2').message;
    const decoded = wire.ModelInferRequest.decode(encoded);
    assert.equal(decoded.model_name, 'm');
    assert.equal(decoded.model_version, '2');
    assert.equal(decoded.raw_input_contents.length, 0, 'typed when every datatype has a typed form');
    const back = inferRequestToJson(decoded);
    assert.equal(back.raw, false);
    assert.deepEqual(back.doc, { id: 'x', parameters: { p: 3, q: 'z', r: true }, inputs, outputs: [{ name: 'out' }] });
  });

  it('FP16 makes the whole message raw; the binary-data extension passes its bytes as they are', () => {
    const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'a', datatype: 'FP16', shape: [2], data: [1, -2] }, { name: 'b', datatype: 'INT32', shape: [1], data: [5] }] }));
    const decoded = wire.ModelInferRequest.decode(inferRequestFromJson(body, undefined, 'm', undefined).message);
    assert.equal(decoded.raw_input_contents.length, 2);
    assert.deepEqual(inferRequestToJson(decoded).doc['inputs'], [{ name: 'a', datatype: 'FP16', shape: [2], data: [1, -2] }, { name: 'b', datatype: 'INT32', shape: [1], data: [5] }]);

    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'a', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }] }));
    const bin = dataToRaw([0.5, 4], 'FP32', 'a');
    const withBinary = wire.ModelInferRequest.decode(inferRequestFromJson(Buffer.concat([header, bin]), header.length, 'm', undefined).message);
    assert.deepEqual(Buffer.from(withBinary.raw_input_contents[0] as Uint8Array), bin);
    assert.deepEqual(withBinary.inputs[0]?.parameters, {});
  });

  it('answers keep the client\'s form: raw for raw requests, typed for typed ones', () => {
    const answer = { model_name: 'm', model_version: '1', id: 'q', outputs: [{ name: 'o', datatype: 'FP32', shape: [2, 2], data: [[1, 2], [3, 4]] }] };
    const raw = wire.ModelInferResponse.decode(inferResponseFromJson(answer, true));
    assert.equal(raw.raw_output_contents.length, 1);
    assert.equal(raw.outputs[0]?.contents, null);
    const typed = wire.ModelInferResponse.decode(inferResponseFromJson(answer, false));
    assert.deepEqual(typed.outputs[0]?.contents?.fp32_contents, [1, 2, 3, 4]);
    const flat = { ...answer, outputs: [{ ...answer.outputs[0], data: [1, 2, 3, 4] }] };
    assert.deepEqual(inferResponseToJson(raw), flat);
    assert.deepEqual(inferResponseToJson(typed), flat);
  });

  it('refuses what does not add up, naming the tensor', () => {
    const bad: [string, () => unknown][] = [
      ['raw size', () => rawToData(Buffer.alloc(5), 'FP32', 2, 'inputs[0]')],
      ['BYTES prefix', () => rawToData(Buffer.from([5, 0, 0, 0, 1]), 'BYTES', 1, 'inputs[0]')],
      ['BYTES count', () => rawToData(dataToRaw(['a', 'b'], 'BYTES', 'x'), 'BYTES', 3, 'inputs[0]')],
      ['UINT64 beyond 2^64', () => dataToRaw([2n ** 64n], 'UINT64', 'inputs[0]')],
      ['INT64 below -2^63', () => dataToRaw([-(2n ** 63n) - 1n], 'INT64', 'inputs[0]')],
      ['INT8 range', () => dataToRaw([128], 'INT8', 'inputs[0]')],
      ['BOOL type', () => dataToRaw([1], 'BOOL', 'inputs[0]')],
      ['count', () => inferRequestFromJson(Buffer.from(JSON.stringify({ inputs: [{ name: 'a', datatype: 'FP32', shape: [3], data: [1] }] })), undefined, 'm', undefined)],
      ['datatype', () => inferRequestFromJson(Buffer.from(JSON.stringify({ inputs: [{ name: 'a', datatype: 'F32', shape: [1], data: [1] }] })), undefined, 'm', undefined)],
    ];
    for (const [what, fn] of bad) {
      assert.throws(fn, (err: unknown) => err instanceof WireError && /inputs\[0\]|\ba\b|datatype|elements/.test(err.message), what);
    }
  });
});
