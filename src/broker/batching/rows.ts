/**
 * Cross-application batching, the tensor part: which KServe v2 infer requests can share one backend
 * call, how they are joined along dim 0, and how the answer is cut back into one answer per caller.
 *
 *   caller A  inputs x:[2,4] ─┐                      ┌─► A: outputs y:[2,3], its own id
 *                             ├─► x:[5,4] ─► model ─►┤
 *   caller B  inputs x:[3,4] ─┘   (one call)         └─► B: outputs y:[3,3], its own id
 *
 * Both forms of the protocol are handled: JSON tensors (`data`) and the binary-data extension (a JSON
 * header of `Inference-Header-Content-Length` bytes, then each binary tensor's bytes in the order the
 * header lists them). Numbers are carried exactly (core/exact-json.ts: -0, integers beyond 2^53),
 * bytes as they are: a batched answer carries bit-identical rows to an unbatched call's.
 *
 * Pure functions, no I/O: the dispatch domain decides when to batch; this decides how.
 */
import { ELEMENT_SIZE, isKserveDatatype, type KserveDatatype } from '../../core/kserve.ts';
import { parseExact, stringifyExact } from '../../core/exact-json.ts';

/** A KServe v2 body: JSON, or a JSON header of `headerLength` bytes followed by binary tensors. */
export interface KserveBody {
  readonly body: Buffer;
  readonly headerLength: number | undefined;
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** A non-negative integer (shapes, sizes), or undefined. */
function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

interface TensorPart {
  readonly name: string;
  readonly datatype: KserveDatatype;
  readonly shape: readonly number[];
  /** The tensor's own object (parameters etc. kept as the caller wrote them). */
  readonly spec: JsonObject;
  /** Leaves of `data`, flattened row-major (JSON form). */
  readonly data: unknown[] | undefined;
  /** Its bytes (binary form). */
  readonly bytes: Buffer | undefined;
}

/** One caller's request, ready to join others with the same key. */
export interface BatchMember {
  /** Members with equal keys can be joined (same inputs, datatypes, non-batch dims, outputs, parameters). */
  readonly key: string;
  /** Rows this caller contributes (dim 0 of its inputs). */
  readonly rows: number;
  readonly id: unknown;
  readonly doc: JsonObject;
  readonly inputs: readonly TensorPart[];
}

export class BatchingError extends Error {}

function parseBody({ body, headerLength }: KserveBody): { doc: JsonObject; binary: Buffer } {
  const head = headerLength === undefined ? body : body.subarray(0, headerLength);
  let doc: unknown;
  try {
    doc = parseExact(head.toString('utf8'));
  } catch (err) {
    throw new BatchingError(`body is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new BatchingError('body is not a JSON object');
  return { doc, binary: headerLength === undefined ? Buffer.alloc(0) : body.subarray(headerLength) };
}

function flatten(v: unknown, out: unknown[]): unknown[] {
  if (Array.isArray(v)) for (const x of v) flatten(x, out);
  else out.push(v);
  return out;
}

/** Tensors of a body, in order, with their data or bytes. */
function tensors(list: unknown, binary: Buffer, what: string): TensorPart[] {
  if (!Array.isArray(list)) throw new BatchingError(`no ${what} array`);
  let offset = 0;
  return list.map((t, i) => {
    if (!isObject(t)) throw new BatchingError(`${what}[${i}] is not an object`);
    const name = t['name'];
    const datatype = t['datatype'];
    const shapeV = t['shape'];
    if (typeof name !== 'string' || !isKserveDatatype(datatype) || !Array.isArray(shapeV)) {
      throw new BatchingError(`${what}[${i}] needs name, datatype and shape`);
    }
    const shape = shapeV.map((d) => count(d));
    if (shape.some((d) => d === undefined)) throw new BatchingError(`${what}[${i}].shape is not a list of counts`);
    const params = t['parameters'];
    const size = isObject(params) ? count(params['binary_data_size']) : undefined;
    let bytes: Buffer | undefined;
    let data: unknown[] | undefined;
    if (size !== undefined) {
      if (offset + size > binary.length) throw new BatchingError(`${what}[${i}] declares more binary data than the body has`);
      bytes = binary.subarray(offset, offset + size);
      offset += size;
    } else if (t['data'] !== undefined) {
      data = flatten(t['data'], []);
    } else {
      throw new BatchingError(`${what}[${i}] has neither data nor binary_data_size`);
    }
    return { name, datatype, shape: shape as number[], spec: t, data, bytes };
  });
}

/** What a tensor must share with the others' to be joined: everything but dim 0 and the data. */
function tensorKey(t: TensorPart): string {
  const params = isObject(t.spec['parameters']) ? { ...t.spec['parameters'] } : {};
  delete params['binary_data_size'];
  return stringifyExact([t.name, t.datatype, t.shape.slice(1), t.bytes !== undefined, params]);
}

/**
 * Reads one caller's infer request for batching. Throws BatchingError when it cannot be joined
 * with others (no batch dimension, inputs that disagree on dim 0, a malformed body): such a
 * request is sent alone, as it came.
 */
export function batchMember(request: KserveBody): BatchMember {
  const { doc, binary } = parseBody(request);
  const inputs = tensors(doc['inputs'], binary, 'inputs');
  if (inputs.length === 0) throw new BatchingError('no inputs');
  const first = inputs[0] as TensorPart;
  if (first.shape.length === 0) throw new BatchingError(`input "${first.name}" has no batch dimension`);
  const rows = first.shape[0] as number;
  if (rows === 0) throw new BatchingError('no rows');
  for (const t of inputs) {
    if (t.shape.length === 0 || t.shape[0] !== rows) throw new BatchingError(`input "${t.name}" does not have ${rows} rows in dim 0`);
  }
  const rest: JsonObject = { ...doc };
  delete rest['id'];
  delete rest['inputs'];
  const key = stringifyExact([inputs.map(tensorKey).sort(), stringifyExact(rest)]);
  return { key, rows, id: doc['id'], doc, inputs };
}

function rowElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape.slice(1)) n *= d;
  return n;
}

/** Joins members with one key into one request, rows in member order. */
export function joinMembers(members: readonly BatchMember[]): KserveBody {
  const lead = members[0];
  if (!lead) throw new BatchingError('no members');
  if (members.some((m) => m.key !== lead.key)) throw new BatchingError('members differ');
  const total = members.reduce((n, m) => n + m.rows, 0);
  const chunks: Buffer[] = [];
  const inputs = lead.inputs.map((t) => {
    const parts = members.map((m) => m.inputs.find((x) => x.name === t.name) as TensorPart);
    const spec: JsonObject = { ...t.spec, shape: [total, ...t.shape.slice(1)] };
    if (t.bytes !== undefined) {
      const bytes = Buffer.concat(parts.map((p) => p.bytes as Buffer));
      chunks.push(bytes);
      spec['parameters'] = { ...(spec['parameters'] as JsonObject), binary_data_size: bytes.length };
    } else {
      spec['data'] = parts.flatMap((p) => p.data as unknown[]);
    }
    return spec;
  });
  // The lead's id (if any) goes along, so the backend puts an id where it puts ids; each member's
  // answer then carries its own in that place.
  const doc: JsonObject = { ...lead.doc, inputs };
  const head = Buffer.from(stringifyExact(doc), 'utf8');
  if (chunks.length === 0) return { body: head, headerLength: undefined };
  return { body: Buffer.concat([head, ...chunks]), headerLength: head.length };
}

/** Splits the bytes of a BYTES tensor (4-byte little-endian length, then the bytes, per element). */
function splitBytesElements(bytes: Buffer, counts: readonly number[], name: string): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const count of counts) {
    const start = at;
    for (let k = 0; k < count; k++) {
      if (at + 4 > bytes.length) throw new BatchingError(`output "${name}": BYTES data ends early`);
      at += 4 + bytes.readUInt32LE(at);
    }
    if (at > bytes.length) throw new BatchingError(`output "${name}": BYTES data ends early`);
    out.push(bytes.subarray(start, at));
  }
  if (at !== bytes.length) throw new BatchingError(`output "${name}": BYTES data longer than its elements`);
  return out;
}

/**
 * Cuts a batched answer into one answer per member, in member order: each output's rows, the
 * member's own `id` (or none, as it asked), the same form (JSON or binary) per output.
 */
export function splitAnswer(answer: KserveBody, members: readonly BatchMember[]): KserveBody[] {
  const { doc, binary } = parseBody(answer);
  const outputs = tensors(doc['outputs'], binary, 'outputs');
  const total = members.reduce((n, m) => n + m.rows, 0);
  const perMember = members.map(() => ({ specs: [] as JsonObject[], chunks: [] as Buffer[] }));
  for (const t of outputs) {
    if (t.shape[0] !== total) throw new BatchingError(`output "${t.name}" has ${String(t.shape[0])} rows in dim 0, the batch has ${total}`);
    const per = rowElements(t.shape);
    const counts = members.map((m) => m.rows * per);
    let pieces: (Buffer | unknown[])[];
    if (t.bytes !== undefined) {
      const size: number = ELEMENT_SIZE[t.datatype];
      if (size === 0) {
        pieces = splitBytesElements(t.bytes, counts, t.name);
      } else {
        if (t.bytes.length !== total * per * size) throw new BatchingError(`output "${t.name}": ${t.bytes.length} bytes for shape [${t.shape.join(',')}]`);
        let at = 0;
        pieces = counts.map((c) => t.bytes!.subarray(at, (at += c * size)));
      }
    } else {
      const data = t.data as unknown[];
      if (data.length !== total * per) throw new BatchingError(`output "${t.name}": ${data.length} elements for shape [${t.shape.join(',')}]`);
      let at = 0;
      pieces = counts.map((c) => data.slice(at, (at += c)));
    }
    members.forEach((m, i) => {
      const piece = pieces[i] as Buffer | unknown[];
      const spec: JsonObject = { ...t.spec, shape: [m.rows, ...t.shape.slice(1)] };
      const slot = perMember[i] as { specs: JsonObject[]; chunks: Buffer[] };
      if (Buffer.isBuffer(piece)) {
        spec['parameters'] = { ...(spec['parameters'] as JsonObject), binary_data_size: piece.length };
        slot.chunks.push(piece);
      } else {
        spec['data'] = piece;
      }
      slot.specs.push(spec);
    });
  }
  return members.map((m, i) => {
    const slot = perMember[i] as { specs: JsonObject[]; chunks: Buffer[] };
    // Keys stay where the backend put them; the id is the member's own (or none, as it asked).
    const entries: [string, unknown][] = [];
    for (const [k, v] of Object.entries(doc)) {
      if (k === 'outputs') {
        if (m.id !== undefined && doc['id'] === undefined) entries.push(['id', m.id]);
        entries.push([k, slot.specs]);
      }
      else if (k !== 'id') entries.push([k, v]);
      else if (m.id !== undefined) entries.push([k, m.id]);
    }
    const own: JsonObject = Object.fromEntries(entries);
    const head = Buffer.from(stringifyExact(own), 'utf8');
    if (slot.chunks.length === 0) return { body: head, headerLength: undefined };
    return { body: Buffer.concat([head, ...slot.chunks]), headerLength: head.length };
  });
}
