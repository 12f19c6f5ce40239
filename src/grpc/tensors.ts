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
import { ELEMENT_SIZE, INT_RANGE, isKserveDatatype, type KserveDatatype } from '../core/kserve.ts';
import type { Int64, PParameters, PTensor, PTensorContents } from './wire.ts';

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** Largest element count accepted for one tensor (as the JSON validation). */
const MAX_ELEMENTS = 2 ** 31;

export type JsonElement = number | boolean | string;
export type JsonParameters = Record<string, boolean | number | string>;

/** A tensor in the KServe JSON form, data flat. */
export interface JsonTensor {
  name: string;
  datatype: KserveDatatype;
  shape: number[];
  parameters?: JsonParameters;
  data: JsonElement[];
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

function checkInt(v: number, datatype: KserveDatatype, where: string): number {
  const range = INT_RANGE[datatype];
  if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) throw new WireError(`${where}: ${v} is not a valid ${datatype}`);
  return v;
}

/** Decodes one raw tensor into flat JSON elements. */
export function rawToData(buf: Uint8Array, datatype: KserveDatatype, count: number, where: string): JsonElement[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (datatype === 'BYTES') {
    const out: string[] = [];
    let at = 0;
    while (at < buf.byteLength) {
      if (at + 4 > buf.byteLength) throw new WireError(`${where}: raw BYTES element ${out.length} has a truncated length prefix`);
      const len = view.getUint32(at, true);
      at += 4;
      if (at + len > buf.byteLength) throw new WireError(`${where}: raw BYTES element ${out.length} runs past the end of its buffer`);
      out.push(Buffer.from(buf.buffer, buf.byteOffset + at, len).toString('utf8'));
      at += len;
    }
    if (out.length !== count) throw new WireError(`${where}: shape holds ${count} elements, raw BYTES has ${out.length}`);
    return out;
  }
  const size = ELEMENT_SIZE[datatype];
  if (buf.byteLength !== count * size) throw new WireError(`${where}: shape of ${datatype} needs ${count * size} raw bytes, got ${buf.byteLength}`);
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
      case 'UINT64': out[i] = checkInt(Number(view.getBigUint64(o, true)), datatype, where); break;
      case 'INT64': out[i] = checkInt(Number(view.getBigInt64(o, true)), datatype, where); break;
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
    const n = num(v, datatype, where);
    switch (datatype) {
      case 'UINT8': buf.writeUInt8(n, o); break;
      case 'INT8': buf.writeInt8(n, o); break;
      case 'UINT16': buf.writeUInt16LE(n, o); break;
      case 'INT16': buf.writeInt16LE(n, o); break;
      case 'UINT32': buf.writeUInt32LE(n, o); break;
      case 'INT32': buf.writeInt32LE(n, o); break;
      case 'UINT64': buf.writeBigUInt64LE(BigInt(n), o); break;
      case 'INT64': buf.writeBigInt64LE(BigInt(n), o); break;
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
      return (values as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'));
    case 'int64_contents':
    case 'uint64_contents':
      return (values as Int64[]).map((v) => checkInt(toSafeInt(v, where), datatype, where));
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
  return { [field]: data.map((v) => num(v, datatype, where)) };
}

// ---- parameters ------------------------------------------------------------------------------

export function parametersToJson(params: PParameters | undefined, where: string): JsonParameters | undefined {
  if (!params) return undefined;
  const keys = Object.keys(params);
  if (keys.length === 0) return undefined;
  const out: JsonParameters = {};
  for (const k of keys) {
    const p = params[k] as (typeof params)[string];
    switch (p.parameter_choice) {
      case 'bool_param': out[k] = p.bool_param === true; break;
      case 'int64_param': out[k] = toSafeInt(p.int64_param ?? 0, `${where}.parameters.${k}`); break;
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
export function tensorFromJson(value: unknown, raw: boolean, binary: Buffer | undefined, where: string): { tensor: Record<string, unknown>; raw: Buffer | undefined } {
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
    // Already raw: check its size against the shape, then pass the bytes as they are.
    rawToData(binary, datatype, count, where);
    return { tensor: base, raw: binary };
  }
  const flat: unknown[] = [];
  flatten(value['data'], flat);
  if (value['data'] === undefined) throw new WireError(`${where} has no data`);
  if (flat.length !== count) throw new WireError(`${where}: shape ${JSON.stringify(shape)} holds ${count} elements, data has ${flat.length}`);
  const data = flat as JsonElement[];
  if (raw) return { tensor: base, raw: dataToRaw(data, datatype, where) };
  return { tensor: { ...base, contents: dataToContents(data, datatype, where) }, raw: undefined };
}
