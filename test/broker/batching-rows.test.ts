/**
 * Joining KServe v2 requests along dim 0 and cutting the answer back, checked against a model that
 * is run once per caller: every caller must get exactly the bytes an unbatched call would return.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchMember, BatchingError, joinMembers, type KserveBody, splitAnswer } from '../../src/broker/batching/rows.ts';
import { parseExact, stringifyExact } from '../../src/core/exact-json.ts';

type Obj = Record<string, unknown>;

function json(doc: string): KserveBody {
  return { body: Buffer.from(doc), headerLength: undefined };
}

function framed(header: Obj, ...chunks: Buffer[]): KserveBody {
  const head = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([head, ...chunks]), headerLength: head.length };
}

/**
 * A row-wise model in the wire format: echoes every input as `<name>_out`, in the form the input
 * came in (JSON data as written but flat, as servers answer, or binary bytes), and adds a per-row INT64 beyond 2^53.
 */
function model(req: KserveBody): KserveBody {
  const head = req.headerLength === undefined ? req.body : req.body.subarray(0, req.headerLength);
  const doc = parseExact(head.toString()) as Obj;
  let at = req.headerLength ?? req.body.length;
  const chunks: Buffer[] = [];
  const outputs = (doc['inputs'] as Obj[]).map((t) => {
    const params = t['parameters'] as Obj | undefined;
    const out: Obj = { name: `${t['name'] as string}_out`, datatype: t['datatype'], shape: t['shape'] };
    const n = params?.['binary_data_size'];
    if (typeof n === 'number') {
      chunks.push(req.body.subarray(at, at + n));
      at += n;
      out['parameters'] = { binary_data_size: n };
    } else {
      out['data'] = [t['data']].flat(Infinity); // servers answer row-major flat data
    }
    return out;
  });
  const rows = ((doc['inputs'] as Obj[])[0]?.['shape'] as number[])[0] as number;
  outputs.push({ name: 'big', datatype: 'INT64', shape: [rows], data: Array.from({ length: rows }, () => 2n ** 63n - 1n) });
  const answer: Obj = { model_name: 'm', model_version: '1', ...(doc['id'] !== undefined ? { id: doc['id'] } : {}), outputs };
  const h = Buffer.from(stringifyExact(answer));
  return chunks.length ? { body: Buffer.concat([h, ...chunks]), headerLength: h.length } : { body: h, headerLength: undefined };
}

function roundTrip(requests: KserveBody[]): void {
  const members = requests.map(batchMember);
  const joined = joinMembers(members);
  const answers = splitAnswer(model(joined), members);
  assert.equal(answers.length, requests.length);
  requests.forEach((req, i) => {
    const alone = model(req);
    assert.equal(answers[i]?.headerLength, alone.headerLength, `caller ${i}: header length`);
    assert.ok(answers[i]?.body.equals(alone.body), `caller ${i}: ${answers[i]?.body.toString()} vs ${alone.body.toString()}`);
  });
}

describe('batching rows: join along dim 0, split the answer', () => {
  it('JSON tensors: each caller gets its own rows and id, numbers exact (-0.0, 1e-45, 2^63-1)', () => {
    roundTrip([
      json('{"id":"a","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[-0.0,1e-45,3.4028235e+38,5.1]}]}'),
      json('{"id":"b","inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,-0.0]]}]}'),
      json('{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[9,8,7,6]}]}'),
    ]);
  });

  it('joined request has the summed dim 0 and the data in member order', () => {
    const members = [
      json('{"id":"a","inputs":[{"name":"x","shape":[1,2],"datatype":"INT64","data":[9223372036854775807,1]}]}'),
      json('{"id":"b","inputs":[{"name":"x","shape":[2,2],"datatype":"INT64","data":[2,3,4,5]}]}'),
    ].map(batchMember);
    const joined = joinMembers(members);
    assert.equal(joined.headerLength, undefined);
    assert.equal(joined.body.toString(), '{"id":"a","inputs":[{"name":"x","shape":[3,2],"datatype":"INT64","data":[9223372036854775807,1,2,3,4,5]}]}');
  });

  it('binary tensors (binary-data extension), including BYTES with arbitrary bytes', () => {
    const f32 = (...v: number[]): Buffer => Buffer.from(new Float32Array(v).buffer);
    const bytes = (...items: Buffer[]): Buffer =>
      Buffer.concat(items.flatMap((b) => {
        const len = Buffer.alloc(4);
        len.writeUInt32LE(b.length);
        return [len, b];
      }));
    const a = framed(
      { id: 'a', inputs: [
        { name: 'x', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } },
        { name: 's', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 7 } },
      ] },
      f32(-0, NaN),
      bytes(Buffer.from([0, 255, 10])),
    );
    const b = framed(
      { id: 'b', inputs: [
        { name: 'x', shape: [2, 2], datatype: 'FP32', parameters: { binary_data_size: 16 } },
        { name: 's', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: 13 } },
      ] },
      f32(Infinity, -Infinity, 1.4e-45, 2),
      bytes(Buffer.alloc(0), Buffer.from('\u0000\u0001\u0002\u0003\u0004')),
    );
    roundTrip([a, b]);
  });

  it('requests that differ in non-batch dims, datatypes, outputs or form get different keys', () => {
    const base = batchMember(json('{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}')).key;
    const others = [
      '{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}',
      '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}',
      '{"inputs":[{"name":"y","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}',
      '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"label"}]}',
      '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"parameters":{"binary_data_output":true}}',
    ];
    for (const o of others) assert.notEqual(batchMember(json(o)).key, base, o);
    assert.equal(batchMember(json('{"id":"z","inputs":[{"name":"x","shape":[3,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12]}]}')).key, base);
    assert.throws(() => joinMembers([batchMember(json(others[0] as string)), batchMember(json(others[1] as string))]), BatchingError);
  });

  it('refuses what has no batch dimension or disagrees on dim 0', () => {
    assert.throws(() => batchMember(json('{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[1]}]}')), BatchingError);
    assert.throws(() => batchMember(json('{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]},{"name":"y","shape":[2],"datatype":"FP32","data":[1,2]}]}')), BatchingError);
    assert.throws(() => batchMember(json('{"inputs":[{"name":"x","shape":[0,2],"datatype":"FP32","data":[]}]}')), BatchingError);
    assert.throws(() => batchMember(json(`{"inputs":${'['.repeat(100000)}`)), BatchingError);
  });

  it('an answer whose dim 0 does not match the batch is refused, not mis-split', () => {
    const members = ['{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}', '{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[2]}]}'].map((d) => batchMember(json(d)));
    assert.throws(() => splitAnswer(json('{"outputs":[{"name":"y","shape":[1,1],"datatype":"FP32","data":[1]}]}'), members), /rows in dim 0/);
    assert.throws(() => splitAnswer(json('{"outputs":[{"name":"y","shape":[2,1],"datatype":"FP32","data":[1]}]}'), members), /elements/);
  });
});
