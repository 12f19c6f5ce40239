/**
 * KServe v2 tensors between their gRPC form (typed `contents` or little-endian `raw_*_contents`)
 * and their JSON form (flat `data` arrays). Both directions check what they translate: datatype
 * known, shape made of safe non-negative integers, element count equal to the shape's product,
 * integers in range, raw sizes exact. A failure is a WireError naming the tensor; the caller decides
 * whether that is the client's fault (bad request) or the backend's (bad answer).
 *
 *   raw layout (one buffer per tensor, row-major):
 *     FP32 [2]  : |00 00 80 3f|00 00 00 40|               1.0, 2.0
 *     BYTES [2] : |02 00 00 00|h i|03 00 00 00|a b c|     "hi", "abc"
 */
import { isUtf8 } from 'node:buffer';
import { ELEMENT_SIZE, INT_RANGE, isKserveDatatype, type KserveDatatype } from '../core/kserve.ts';
import type { Int64, PParameters, PTensor, PTensorContents } from './wire.ts';

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** A valid tensor whose values the JSON form cannot carry (NaN, ±Infinity, bytes that are not UTF-8): send it as binary. */
export class NotJsonTensor extends WireError {
  constructor(message: string) {
    super(message);
    this.name = 'NotJsonTensor';
  }
}

/** Largest element count accepted for one tensor (as the JSON validation). */
const MAX_ELEMENTS = 2 ** 31;

/** An element in memory: 64-bit integers beyond ±2^53 are bigint, so that none is rounded. */
export type JsonElement = number | bigint | boolean | string;
export type JsonParameters = Record<string, boolean | number | bigint | string>;

/** A tensor in the KServe JSON form, data flat. */
export interface JsonTensor {
  name: string;
  datatype: KserveDatatype;
  shape: number[];
  parameters?: JsonParameters;
  data: JsonElement[];
}

/** A decoded int64 as a number when it is safe, else as an exact bigint. */
export function int64Value(v: Int64): number | bigint {
  if (typeof v === 'number') return v;
  const n = v.toNumber();
  return Number.isSafeInteger(n) ? n : BigInt(v.toString());
}

export function toSafeInt(v: Int64, where: string): number {
  const n = typeof v === 'number' ? v : Number(v.toString());
  if (!Number.isSafeInteger(n)) throw new WireError(`${where}: ${v.toString()} is beyond 2^53`);
  return n;
}

export function shapeOf(shape: readonly Int64[], where: string): number[] {
  return shape.map((d) => {
    const n = toSafeInt(d, `${where}.shape`);
    if (n < 0) throw new WireError(`${where}.shape must hold non-negative integers`);
    return n;
  });
}

export function elementCount(shape: readonly number[], where: string): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > MAX_ELEMENTS) throw new WireError(`${where}: shape ${JSON.stringify(shape)} is too large`);
  }
  return n;
}

export function datatypeOf(v: unknown, where: string): KserveDatatype {
  if (!isKserveDatatype(v)) throw new WireError(`${where}.datatype must be one of ${Object.keys(ELEMENT_SIZE).join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

// ---- FP16 / BF16 ----------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = (mant | 0x800000) >> (1 - e);
    return sign | ((m + 0x1000) >> 13);
  }
  return sign | ((e << 10) + ((mant + 0x1000) >> 13));
}

function bf16ToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0] as number;
}

function floatToBf16(v: number): number {
  f32[0] = v;
  return (u32[0] as number) >>> 16;
}

// ---- raw bytes ⇄ JSON elements ---------------------------------------------------------------

const RANGE64 = { INT64: [-(2n ** 63n), 2n ** 63n - 1n], UINT64: [0n, 2n ** 64n - 1n] } as const;

function checkInt(v: number, datatype: KserveDatatype, where: string): number {
  const range = INT_RANGE[datatype];
  if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) throw new WireError(`${where}: ${v} is not a valid ${datatype}`);
  return v;
}

/** A 64-bit integer element, exact: a safe number, or a bigint in the datatype's range. */
function check64(v: number | bigint, datatype: 'INT64' | 'UINT64', where: string): bigint {
  if (typeof v === 'number' && !Number.isInteger(v)) throw new WireError(`${where}: ${v} is not a valid ${datatype}`);
  const b = BigInt(v);
  const [lo, hi] = RANGE64[datatype];
  if (b < lo || b > hi) throw new WireError(`${where}: ${b} is not a valid ${datatype}`);
  return b;
}

function exact64(b: bigint): number | bigint {
  const n = Number(b);
  return Number.isSafeInteger(n) ? n : b;
}

/** UTF-8 text of BYTES element bytes; bytes that are not UTF-8 cannot travel as a JSON string. */
function utf8(b: Uint8Array, where: string): string {
  if (!isUtf8(b)) throw new NotJsonTensor(`${where}: BYTES element holds bytes that are not UTF-8; JSON cannot carry them (send it as binary data)`);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

/** Splits a raw BYTES tensor into its elements (views, not copies), checking the length prefixes and the count. */
export function splitRawBytes(buf: Uint8Array, count: number, where: string): Uint8Array[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < buf.byteLength) {
    if (at + 4 > buf.byteLength) throw new WireError(`${where}: raw BYTES element ${out.length} has a truncated length prefix`);
    const len = view.getUint32(at, true);
    at += 4;
    if (at + len > buf.byteLength) throw new WireError(`${where}: raw BYTES element ${out.length} runs past the end of its buffer`);
    out.push(buf.subarray(at, at + len));
    at += len;
  }
  if (out.length !== count) throw new WireError(`${where}: shape holds ${count} elements, raw BYTES has ${out.length}`);
  return out;
}

/** Checks a raw tensor's size against its shape without decoding it. */
export function checkRaw(buf: Uint8Array, datatype: KserveDatatype, count: number, where: string): void {
  if (datatype === 'BYTES') {
    splitRawBytes(buf, count, where);
    return;
  }
  const size = ELEMENT_SIZE[datatype];
  if (buf.byteLength !== count * size) throw new WireError(`${where}: shape of ${datatype} needs ${count * size} raw bytes, got ${buf.byteLength}`);
}

/** Decodes one raw tensor into flat JSON elements. */
export function rawToData(buf: Uint8Array, datatype: KserveDatatype, count: number, where: string): JsonElement[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (datatype === 'BYTES') return splitRawBytes(buf, count, where).map((b) => utf8(b, where));
  checkRaw(buf, datatype, count, where);
  const size = ELEMENT_SIZE[datatype];
  const out = new Array<JsonElement>(count);
  for (let i = 0; i < count; i++) {
    const o = i * size;
    switch (datatype) {
      case 'BOOL': out[i] = view.getUint8(o) !== 0; break;
      case 'UINT8': out[i] = view.getUint8(o); break;
      case 'INT8': out[i] = view.getInt8(o); break;
      case 'UINT16': out[i] = view.getUint16(o, true); break;
      case 'INT16': out[i] = view.getInt16(o, true); break;
      case 'UINT32': out[i] = view.getUint32(o, true); break;
      case 'INT32': out[i] = view.getInt32(o, true); break;
      case 'UINT64': out[i] = exact64(view.getBigUint64(o, true)); break;
      case 'INT64': out[i] = exact64(view.getBigInt64(o, true)); break;
      case 'FP16': out[i] = halfToFloat(view.getUint16(o, true)); break;
      case 'BF16': out[i] = bf16ToFloat(view.getUint16(o, true)); break;
      case 'FP32': out[i] = view.getFloat32(o, true); break;
      case 'FP64': out[i] = view.getFloat64(o, true); break;
    }
  }
  return out;
}

function num(v: JsonElement, datatype: KserveDatatype, where: string): number {
  if (typeof v !== 'number') throw new WireError(`${where}: ${datatype} data must be numbers`);
  return checkInt(v, datatype, where);
}

function int64(v: JsonElement, datatype: 'INT64' | 'UINT64', where: string): bigint {
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new WireError(`${where}: ${datatype} data must be integers`);
  return check64(v, datatype, where);
}

/** Encodes flat JSON elements as one raw tensor. */
export function dataToRaw(data: readonly JsonElement[], datatype: KserveDatatype, where: string): Buffer {
  if (datatype === 'BYTES') {
    const parts: Buffer[] = [];
    for (const v of data) {
      if (typeof v !== 'string') throw new WireError(`${where}: BYTES data must be strings`);
      const b = Buffer.from(v, 'utf8');
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32LE(b.length, 0);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  const size = ELEMENT_SIZE[datatype];
  const buf = Buffer.alloc(data.length * size);
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as JsonElement;
    const o = i * size;
    if (datatype === 'BOOL') {
      if (typeof v !== 'boolean') throw new WireError(`${where}: BOOL data must be true or false`);
      buf.writeUInt8(v ? 1 : 0, o);
      continue;
    }
    if (datatype === 'INT64') {
      buf.writeBigInt64LE(int64(v, datatype, where), o);
      continue;
    }
    if (datatype === 'UINT64') {
      buf.writeBigUInt64LE(int64(v, datatype, where), o);
      continue;
    }
    const n = num(v, datatype, where);
    switch (datatype) {
      case 'UINT8': buf.writeUInt8(n, o); break;
      case 'INT8': buf.writeInt8(n, o); break;
      case 'UINT16': buf.writeUInt16LE(n, o); break;
      case 'INT16': buf.writeInt16LE(n, o); break;
      case 'UINT32': buf.writeUInt32LE(n, o); break;
      case 'INT32': buf.writeInt32LE(n, o); break;
      case 'FP16': buf.writeUInt16LE(floatToHalf(n), o); break;
      case 'BF16': buf.writeUInt16LE(floatToBf16(n), o); break;
      case 'FP32': buf.writeFloatLE(n, o); break;
      case 'FP64': buf.writeDoubleLE(n, o); break;
    }
  }
  return buf;
}

// ---- typed contents ⇄ JSON elements ----------------------------------------------------------

/** Which InferTensorContents field carries a datatype; FP16 and BF16 have none (raw only). */
export function contentsField(datatype: KserveDatatype): keyof PTensorContents | undefined {
  switch (datatype) {
    case 'BOOL': return 'bool_contents';
    case 'INT8': case 'INT16': case 'INT32': return 'int_contents';
    case 'INT64': return 'int64_contents';
    case 'UINT8': case 'UINT16': case 'UINT32': return 'uint_contents';
    case 'UINT64': return 'uint64_contents';
    case 'FP32': return 'fp32_contents';
    case 'FP64': return 'fp64_contents';
    case 'BYTES': return 'bytes_contents';
    case 'FP16': case 'BF16': return undefined;
  }
}

export function contentsToData(contents: PTensorContents, datatype: KserveDatatype, count: number, where: string): JsonElement[] {
  const field = contentsField(datatype);
  if (field === undefined) throw new WireError(`${where}: ${datatype} has no typed contents; send it as raw contents`);
  const values = contents[field] as readonly unknown[];
  if (values.length !== count) throw new WireError(`${where}: shape holds ${count} elements, contents.${field} has ${values.length}`);
  switch (field) {
    case 'bool_contents':
    case 'fp32_contents':
    case 'fp64_contents':
      return values as JsonElement[];
    case 'bytes_contents':
      return (values as Uint8Array[]).map((b) => utf8(b, where));
    case 'int64_contents':
    case 'uint64_contents':
      return (values as Int64[]).map((v) => exact64(check64(int64Value(v), datatype as 'INT64' | 'UINT64', where)));
    default:
      return (values as number[]).map((v) => checkInt(v, datatype, where));
  }
}

/** Typed contents for flat JSON data (a plain object protobufjs encodes). */
export function dataToContents(data: readonly JsonElement[], datatype: KserveDatatype, where: string): Record<string, unknown[]> {
  const field = contentsField(datatype);
  if (field === undefined) throw new WireError(`${where}: ${datatype} has no typed contents`);
  if (datatype === 'BYTES') {
    return {
      [field]: data.map((v) => {
        if (typeof v !== 'string') throw new WireError(`${where}: BYTES data must be strings`);
        return Buffer.from(v, 'utf8');
      }),
    };
  }
  if (datatype === 'BOOL') {
    for (const v of data) if (typeof v !== 'boolean') throw new WireError(`${where}: BOOL data must be true or false`);
    return { [field]: data as boolean[] };
  }
  if (datatype === 'INT64' || datatype === 'UINT64') {
    // protobufjs takes a decimal string for a 64-bit value beyond 2^53 exactly.
    return { [field]: data.map((v) => exact64String(int64(v, datatype, where))) };
  }
  return { [field]: data.map((v) => num(v, datatype, where)) };
}

function exact64String(b: bigint): number | string {
  const n = Number(b);
  return Number.isSafeInteger(n) ? n : b.toString();
}

/** A tensor's typed contents as its raw bytes (exact: BYTES as given, NaN and -0 kept). */
export function contentsToRaw(contents: PTensorContents, datatype: KserveDatatype, count: number, where: string): Buffer {
  if (datatype === 'BYTES') {
    const values = contents.bytes_contents;
    if (values.length !== count) throw new WireError(`${where}: shape holds ${count} elements, contents.bytes_contents has ${values.length}`);
    return joinRawBytes(values);
  }
  const field = contentsField(datatype);
  if (field === undefined) throw new WireError(`${where}: ${datatype} has no typed contents; send it as raw contents`);
  const values = contents[field] as readonly unknown[];
  if (values.length !== count) throw new WireError(`${where}: shape holds ${count} elements, contents.${field} has ${values.length}`);
  const data = field === 'int64_contents' || field === 'uint64_contents' ? (values as Int64[]).map(int64Value) : (values as JsonElement[]);
  return dataToRaw(data, datatype, where);
}

/** BYTES elements in the raw layout: a 4-byte little-endian length before each. */
export function joinRawBytes(values: readonly Uint8Array[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const b of values) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(b.byteLength, 0);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

/** Typed contents of a raw tensor (BYTES elements as their bytes, whatever they hold). */
export function rawToContents(buf: Uint8Array, datatype: KserveDatatype, count: number, where: string): Record<string, unknown[]> {
  if (datatype === 'BYTES') return { bytes_contents: splitRawBytes(buf, count, where) };
  return dataToContents(rawToData(buf, datatype, count, where), datatype, where);
}

// ---- parameters ------------------------------------------------------------------------------

export function parametersToJson(params: PParameters | undefined, _where: string): JsonParameters | undefined {
  if (!params) return undefined;
  const keys = Object.keys(params);
  if (keys.length === 0) return undefined;
  const out: JsonParameters = {};
  for (const k of keys) {
    const p = params[k] as (typeof params)[string];
    switch (p.parameter_choice) {
      case 'bool_param': out[k] = p.bool_param === true; break;
      case 'int64_param': out[k] = int64Value(p.int64_param ?? 0); break;
      case 'string_param': out[k] = p.string_param ?? ''; break;
      default: break; // an unset oneof carries nothing
    }
  }
  return out;
}

/** JSON parameters as InferParameter values: booleans, integers and strings; other values become their JSON text. */
export function parametersToProto(params: unknown): Record<string, Record<string, unknown>> | undefined {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return undefined;
  const out: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(params)) {
    if (typeof v === 'boolean') out[k] = { bool_param: v };
    else if (typeof v === 'number' && Number.isSafeInteger(v)) out[k] = { int64_param: v };
    else if (typeof v === 'bigint') out[k] = { int64_param: v.toString() };
    else if (typeof v === 'string') out[k] = { string_param: v };
    else out[k] = { string_param: JSON.stringify(v) };
  }
  return out;
}

// ---- whole tensors -------------------------------------------------------------------------

/** A gRPC tensor (typed contents, or its raw buffer) as a JSON tensor. */
export function tensorToJson(t: PTensor, raw: Uint8Array | undefined, where: string): JsonTensor {
  if (typeof t.name !== 'string' || t.name === '') throw new WireError(`${where}.name must be a non-empty string`);
  const datatype = datatypeOf(t.datatype, where);
  const shape = shapeOf(t.shape, where);
  const count = elementCount(shape, where);
  let data: JsonElement[];
  if (raw !== undefined) {
    if (t.contents) throw new WireError(`${where} has both contents and raw contents`);
    data = rawToData(raw, datatype, count, where);
  } else {
    if (!t.contents) throw new WireError(`${where} has no data (neither contents nor raw contents)`);
    data = contentsToData(t.contents, datatype, count, where);
  }
  const parameters = parametersToJson(t.parameters, where);
  return { name: t.name, datatype, shape, ...(parameters && { parameters }), data };
}

function flatten(data: unknown, out: unknown[]): void {
  if (Array.isArray(data)) for (const v of data) flatten(v, out);
  else out.push(data);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A JSON tensor as a gRPC tensor: the plain object to encode, plus its raw buffer when `raw`.
 * `binary` is the tensor's bytes when the JSON used the binary-data extension.
 */
export function tensorFromJson(value: unknown, raw: boolean, binary: Uint8Array | undefined, where: string): { tensor: Record<string, unknown>; raw: Uint8Array | undefined } {
  if (!isRecord(value)) throw new WireError(`${where} must be an object`);
  const { name, shape, parameters } = value;
  if (typeof name !== 'string' || name === '') throw new WireError(`${where}.name must be a non-empty string`);
  const datatype = datatypeOf(value['datatype'], where);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw new WireError(`${where}.shape must be an array of non-negative integers`);
  const count = elementCount(shape as number[], where);
  const params = isRecord(parameters) ? { ...parameters } : undefined;
  if (params) delete params['binary_data_size'];
  const base: Record<string, unknown> = { name, datatype, shape };
  const protoParams = parametersToProto(params);
  if (protoParams && Object.keys(protoParams).length > 0) base['parameters'] = protoParams;
  if (binary !== undefined) {
    // Already raw: check its size against the shape, then pass the bytes as they are (or typed, when asked).
    checkRaw(binary, datatype, count, where);
    if (raw) return { tensor: base, raw: binary };
    return { tensor: { ...base, contents: rawToContents(binary, datatype, count, where) }, raw: undefined };
  }
  const flat: unknown[] = [];
  flatten(value['data'], flat);
  if (value['data'] === undefined) throw new WireError(`${where} has no data`);
  if (flat.length !== count) throw new WireError(`${where}: shape ${JSON.stringify(shape)} holds ${count} elements, data has ${flat.length}`);
  const data = flat as JsonElement[];
  if (raw) return { tensor: base, raw: dataToRaw(data, datatype, where) };
  return { tensor: { ...base, contents: dataToContents(data, datatype, where) }, raw: undefined };
}
