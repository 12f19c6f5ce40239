/**
 * KServe v2 / Open Inference Protocol tensors in their JSON form: decoding and validating an
 * inference request body. Data may be flat or nested row-major arrays; it comes out flat.
 */
import { INT_RANGE } from '../core/kserve.ts';
import { badRequest, isRecord } from './http.ts';

export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'BF16', 'FP32', 'FP64', 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];
/** 64-bit integers beyond ±2^53 are bigint (read exactly). */
export type Element = number | bigint | boolean | string;

export interface Tensor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  /** Flattened, row-major. */
  readonly data: readonly Element[];
  /** The tensor's bytes when it arrived as binary data (binary-data extension or gRPC raw contents). */
  readonly raw?: Uint8Array | undefined;
}

/** Model metadata entry; `-1` marks a variable dimension. */
export interface TensorMeta {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
}

export interface InferRequest {
  readonly id: string | undefined;
  readonly inputs: readonly Tensor[];
  /** Names of the outputs asked for; undefined means all. */
  readonly outputs: readonly string[] | undefined;
}

/** The binary-data extension's wishes: outputs answered as binary data (`binary_data` per output overrides `binary_data_output`). */
export interface BinaryWishes {
  readonly all: boolean;
  readonly per: ReadonlyMap<string, boolean>;
}


function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && (DATATYPES as readonly string[]).includes(value);
}

function elementCheck(datatype: Datatype): (v: unknown) => boolean {
  if (datatype === 'BOOL') return (v) => typeof v === 'boolean';
  if (datatype === 'BYTES') return (v) => typeof v === 'string';
  const range = INT_RANGE[datatype];
  if (!range) return (v) => typeof v === 'number';
  const [min, max] = range;
  // 64-bit integers beyond 2^53 arrive as bigint (their exact range is checked where they were read).
  if (datatype === 'INT64' || datatype === 'UINT64') return (v) => typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max);
  return (v) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function flatten(data: readonly unknown[], out: unknown[], depth: number, where: string): void {
  for (const v of data) {
    if (Array.isArray(v)) {
      if (depth <= 1) throw badRequest(`${where}: data is nested deeper than its shape`);
      flatten(v, out, depth - 1, where);
    } else out.push(v);
  }
}

function parseTensor(value: unknown, index: number): Tensor {
  const where = `inputs[${index}]`;
  if (!isRecord(value)) throw badRequest(`${where} must be an object with name, shape, datatype and data`);
  const { name, shape, datatype, data } = value;
  if (typeof name !== 'string' || name === '') throw badRequest(`${where}.name must be a non-empty string`);
  const at = `input "${name}"`;
  if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isInteger(d) && (d as number) >= 0)) {
    throw badRequest(`${at}: shape must be an array of non-negative integers`);
  }
  if (!isDatatype(datatype)) throw badRequest(`${at}: datatype must be one of ${DATATYPES.join(', ')}`);
  if (!Array.isArray(data)) throw badRequest(`${at}: data must be an array`);
  let flat: readonly unknown[] = data;
  if (data.some(Array.isArray)) {
    const out: unknown[] = [];
    flatten(data, out, Math.max(shape.length, 1), at);
    flat = out;
  }
  const expected = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== expected) throw badRequest(`${at}: shape [${shape.join(',')}] needs ${expected} elements, data has ${flat.length}`);
  const ok = elementCheck(datatype);
  for (let i = 0; i < flat.length; i++) {
    if (!ok(flat[i])) throw badRequest(`${at}: element ${i} is not a valid ${datatype} value`);
  }
  return { name, datatype, shape, data: flat as Element[] };
}

/** Decodes a `POST .../infer` body; throws a 400 HttpError saying what is wrong. */
export function parseInferRequest(body: unknown): InferRequest {
  if (!isRecord(body)) throw badRequest('request body must be a JSON object');
  const { id, inputs, outputs } = body;
  if (id !== undefined && typeof id !== 'string') throw badRequest('id must be a string');
  if (!Array.isArray(inputs) || inputs.length === 0) throw badRequest('inputs must be a non-empty array');
  const tensors = inputs.map(parseTensor);
  const names = new Set(tensors.map((t) => t.name));
  if (names.size !== tensors.length) throw badRequest('input names must be unique');
  let wanted: string[] | undefined;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw badRequest('outputs must be an array of {name}');
    wanted = outputs.map((o, i) => {
      if (!isRecord(o) || typeof o['name'] !== 'string') throw badRequest(`outputs[${i}].name must be a string`);
      return o['name'];
    });
  }
  return { id, inputs: tensors, outputs: wanted };
}

/** A response tensor as the protocol writes it. */
export interface OutputTensor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly data: readonly Element[];
  /** Exact bytes of the tensor (the identity model answers an input's bytes as they came). */
  readonly raw?: Uint8Array | undefined;
}

/** Keeps the outputs that were asked for; an unknown name is a 400. */
export function selectOutputs(all: readonly OutputTensor[], wanted: readonly string[] | undefined): OutputTensor[] {
  if (wanted === undefined) return [...all];
  return wanted.map((name) => {
    const t = all.find((o) => o.name === name);
    if (!t) throw badRequest(`unknown output "${name}"; this model has ${all.map((o) => o.name).join(', ')}`);
    return t;
  });
}

/** Numeric view of an element, for the simulated model's deterministic output. */
export function elementValue(e: Element): number {
  return typeof e === 'number' ? e : typeof e === 'bigint' ? Number(e) : typeof e === 'boolean' ? (e ? 1 : 0) : e.length;
}
