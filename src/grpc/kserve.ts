/**
 * Whole KServe v2 messages between gRPC and JSON. The JSON form is the protocol-neutral one inside
 * ModelGuard (the broker, limits and HTTP backends see KServe v2 REST bodies); these functions are
 * the only place the two forms meet.
 *
 * Answers keep the client's form: a request sent with raw contents is answered with
 * raw_output_contents, a request with typed contents with typed contents (FP16/BF16 outputs have no
 * typed form, so an answer holding one is raw throughout).
 */
import { parseExact, stringifyExact } from '../core/exact-json.ts';
import { parseHeaderLength } from '../core/kserve-frame.ts';
import { wire, type PInferRequest, type PInferResponse, type PModelMetadata, type PTensor } from './wire.ts';
import {
  checkRaw,
  contentsToData,
  contentsToRaw,
  datatypeOf,
  elementCount,
  isRecord,
  NotJsonTensor,
  parametersToJson,
  parametersToProto,
  rawToData,
  shapeOf,
  tensorFromJson,
  tensorToJson,
  WireError,
  type JsonElement,
} from './tensors.ts';

export { NotJsonTensor, WireError } from './tensors.ts';

/** A KServe v2 REST body with the headers that describe it (the binary-data extension's among them). */
export interface RestBody {
  readonly body: Buffer;
  readonly headers: Record<string, string>;
}

/** Which outputs a REST client asked for as binary data: `binary_data` per output overrides `binary_data_output`. */
export interface BinaryOutputs {
  readonly all: boolean;
  readonly per: ReadonlyMap<string, boolean>;
}

export const NO_BINARY: BinaryOutputs = { all: false, per: new Map() };

export function wantsBinary(b: BinaryOutputs, name: string): boolean {
  return b.per.get(name) ?? b.all;
}

/** Parses JSON exactly (64-bit integers beyond 2^53 as bigint); bad JSON is a WireError. */
function parseDoc(text: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseExact(text.toString('utf8'));
  } catch {
    throw new WireError(`${what} is not valid JSON`);
  }
  if (!isRecord(doc)) throw new WireError(`${what} must be a JSON object`);
  return doc;
}

/** A body, framed when any tensor travels as binary data. */
function frame(doc: Record<string, unknown>, binaries: readonly Uint8Array[]): RestBody {
  const header = Buffer.from(stringifyExact(doc), 'utf8');
  if (binaries.length === 0) return { body: header, headers: { 'content-type': 'application/json' } };
  return {
    body: Buffer.concat([header, ...binaries]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
  };
}

const FLOATS = new Set(['FP16', 'BF16', 'FP32', 'FP64']);

/** Name, datatype, shape and parameters of a gRPC tensor, checked; `count` is its element count. */
function tensorHead(t: PTensor, where: string): { head: Record<string, unknown>; count: number } {
  if (typeof t.name !== 'string' || t.name === '') throw new WireError(`${where}.name must be a non-empty string`);
  const datatype = datatypeOf(t.datatype, where);
  const shape = shapeOf(t.shape, where);
  const count = elementCount(shape, where);
  const parameters = parametersToJson(t.parameters, where);
  if (parameters) delete parameters['binary_data_size'];
  const head: Record<string, unknown> = { name: t.name, datatype, shape };
  if (parameters && Object.keys(parameters).length > 0) head['parameters'] = parameters;
  return { head, count };
}

function withSize(head: Record<string, unknown>, size: number): Record<string, unknown> {
  return { ...head, parameters: { ...(head['parameters'] as Record<string, unknown> | undefined), binary_data_size: size } };
}

/** JSON data of typed contents, or undefined when JSON cannot carry them (NaN, ±Infinity, bytes that are not UTF-8). */
function jsonData(t: PTensor, count: number, where: string): JsonElement[] | undefined {
  const datatype = t.datatype;
  try {
    const data = contentsToData(t.contents as NonNullable<PTensor['contents']>, datatypeOf(datatype, where), count, where);
    if (FLOATS.has(datatype) && data.some((v) => typeof v === 'number' && !Number.isFinite(v))) return undefined;
    return data;
  } catch (err) {
    if (err instanceof NotJsonTensor) return undefined;
    throw err;
  }
}

/** The request's inputs and raw contents, checked to go together: `raw` when the client sent its tensors as raw bytes. */
function rawContents(req: PInferRequest): { rawAll: PInferRequest['raw_input_contents']; raw: boolean } {
  if (req.inputs.length === 0) throw new WireError('inputs must not be empty');
  const rawAll = req.raw_input_contents;
  const raw = rawAll.length > 0;
  if (raw && rawAll.length !== req.inputs.length) {
    throw new WireError(`raw_input_contents has ${rawAll.length} entries for ${req.inputs.length} inputs`);
  }
  return { rawAll, raw };
}

/**
 * A ModelInferRequest as the KServe v2 REST request an HTTP backend takes, bit for bit: raw
 * contents travel as binary data (the binary-data extension), typed contents as JSON data unless
 * JSON cannot carry them (NaN, ±Infinity, bytes that are not UTF-8: that tensor goes as binary
 * data). All outputs are asked for as binary data, so an answer's bytes reach the client as the
 * backend produced them; a backend without the extension answers JSON, which is translated too.
 * `raw` says which form the client used (its answer keeps it).
 */
export function inferRequestToRest(req: PInferRequest): RestBody & { raw: boolean } {
  const { rawAll, raw } = rawContents(req);
  const names = new Set<string>();
  const binaries: Uint8Array[] = [];
  const inputs = req.inputs.map((t, i) => {
    const where = `inputs[${i}]`;
    const { head, count } = tensorHead(t, where);
    if (names.has(t.name)) throw new WireError(`input "${t.name}" given twice`);
    names.add(t.name);
    const datatype = head['datatype'] as ReturnType<typeof datatypeOf>;
    let bin: Uint8Array;
    if (raw) {
      if (t.contents) throw new WireError(`${where} has both contents and raw contents`);
      bin = rawAll[i] as Uint8Array;
      checkRaw(bin, datatype, count, where);
    } else {
      if (!t.contents) throw new WireError(`${where} has no data (neither contents nor raw contents)`);
      const data = jsonData(t, count, where);
      if (data !== undefined) return { ...head, data };
      bin = contentsToRaw(t.contents, datatype, count, where);
    }
    binaries.push(bin);
    return withSize(head, bin.byteLength);
  });
  const doc: Record<string, unknown> = {};
  if (req.id !== '') doc['id'] = req.id;
  doc['parameters'] = { ...parametersToJson(req.parameters, 'request'), binary_data_output: true };
  doc['inputs'] = inputs;
  if (req.outputs.length > 0) {
    doc['outputs'] = req.outputs.map((o, i) => {
      if (o.name === '') throw new WireError(`outputs[${i}].name must be a non-empty string`);
      const p = parametersToJson(o.parameters, `outputs[${i}]`);
      return p ? { name: o.name, parameters: p } : { name: o.name };
    });
  }
  return { ...frame(doc, binaries), raw };
}

/** Splits a REST infer answer or request into its JSON document and each tensor's binary bytes (undefined for JSON tensors). */
export function splitRest(body: Buffer, headerLengthValue: string | undefined, list: 'inputs' | 'outputs', what: string): { doc: Record<string, unknown>; binaries: (Buffer | undefined)[] } {
  let headerLength: number | undefined;
  if (headerLengthValue !== undefined) {
    headerLength = parseHeaderLength(headerLengthValue);
    if (headerLength === undefined || headerLength > body.length) throw new WireError(`${what}: Inference-Header-Content-Length "${headerLengthValue}" does not fit a ${body.length}-byte body`);
  }
  const doc = parseDoc(headerLength === undefined ? body : body.subarray(0, headerLength), what);
  const tensors = doc[list];
  let offset = headerLength ?? 0;
  const binaries = (Array.isArray(tensors) ? tensors : []).map((t: unknown, i) => {
    const size = isRecord(t) && isRecord(t['parameters']) ? t['parameters']['binary_data_size'] : undefined;
    if (size === undefined) return undefined;
    if (headerLength === undefined) throw new WireError(`${what}: ${list}[${i}] has binary_data_size but there is no Inference-Header-Content-Length`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || offset + size > body.length) {
      throw new WireError(`${what}: ${list}[${i}].parameters.binary_data_size does not fit the body`);
    }
    const b = body.subarray(offset, offset + size);
    offset += size;
    return b;
  });
  if (headerLength !== undefined && offset !== body.length) throw new WireError(`${what}: ${body.length - offset} bytes after the binary tensors that no tensor declares`);
  return { doc, binaries };
}

/** A REST infer answer (JSON, or framed binary data) as an encoded ModelInferResponse, raw or typed as the client asked. */
export function inferResponseFromRest(body: Buffer, headers: Readonly<Record<string, string>>, raw: boolean): Buffer {
  const { doc, binaries } = splitRest(body, headers['inference-header-content-length'], 'outputs', 'answer');
  return inferResponseFromJson(doc, raw, (i) => binaries[i]);
}

/** A decoded ModelInferRequest as a KServe v2 JSON body, checked; `raw` says which form the client used. */
export function inferRequestToJson(req: PInferRequest): { doc: Record<string, unknown>; raw: boolean } {
  const where = (i: number): string => `inputs[${i}]`;
  const { rawAll, raw } = rawContents(req);
  const names = new Set<string>();
  const inputs = req.inputs.map((t, i) => {
    const j = tensorToJson(t, raw ? rawAll[i] : undefined, where(i));
    if (names.has(j.name)) throw new WireError(`input "${j.name}" given twice`);
    names.add(j.name);
    return j;
  });
  const doc: Record<string, unknown> = {};
  if (req.id !== '') doc['id'] = req.id;
  const parameters = parametersToJson(req.parameters, 'request');
  if (parameters) doc['parameters'] = parameters;
  doc['inputs'] = inputs;
  if (req.outputs.length > 0) {
    doc['outputs'] = req.outputs.map((o, i) => {
      if (o.name === '') throw new WireError(`outputs[${i}].name must be a non-empty string`);
      const p = parametersToJson(o.parameters, `outputs[${i}]`);
      return p ? { name: o.name, parameters: p } : { name: o.name };
    });
  }
  return { doc, raw };
}

const RAW_ONLY = new Set(['FP16', 'BF16']);

function tensorsFromJson(list: unknown, what: string, preferRaw: boolean, binary?: (t: unknown, i: number) => Uint8Array | undefined, binaryMakesRaw = false): { tensors: Record<string, unknown>[]; raw: Uint8Array[] } {
  if (!Array.isArray(list)) throw new WireError(`"${what}" must be an array`);
  // Raw for all when asked, or when any tensor is FP16/BF16 (no typed form).
  const raw = preferRaw || list.some((t, i) => (isRecord(t) && RAW_ONLY.has(t['datatype'] as string)) || (binaryMakesRaw && binary?.(t, i) !== undefined));
  const tensors: Record<string, unknown>[] = [];
  const bufs: Uint8Array[] = [];
  list.forEach((t, i) => {
    const r = tensorFromJson(t, raw, binary?.(t, i), `${what}[${i}]`);
    tensors.push(r.tensor);
    if (r.raw) bufs.push(r.raw);
  });
  return { tensors, raw: bufs };
}

/**
 * A KServe v2 REST infer body (JSON, or the binary-data extension: a JSON header of `headerLength`
 * bytes, then the tensors' bytes) as an encoded ModelInferRequest, with the outputs the client
 * wants back as binary data. Integers beyond 2^53 are read exactly.
 */
export function inferRequestFromJson(body: Buffer, headerLength: number | undefined, model: string, version: string | undefined): { message: Buffer; binary: BinaryOutputs } {
  const { doc, binaries } = splitRest(body, headerLength === undefined ? undefined : String(headerLength), 'inputs', 'request');
  // Inputs sent as binary data go out as raw contents, byte for byte.
  const { tensors, raw } = tensorsFromJson(doc['inputs'], 'inputs', false, (_t, i) => binaries[i], true);
  if (tensors.length === 0) throw new WireError('inputs must not be empty');
  const msg: Record<string, unknown> = { model_name: model, inputs: tensors };
  if (version !== undefined) msg['model_version'] = version;
  if (typeof doc['id'] === 'string') msg['id'] = doc['id'];
  const reqParams = isRecord(doc['parameters']) ? { ...doc['parameters'] } : undefined;
  const all = reqParams?.['binary_data_output'] === true;
  if (reqParams) delete reqParams['binary_data_output'];
  const params = parametersToProto(reqParams);
  if (params && Object.keys(params).length > 0) msg['parameters'] = params;
  if (raw.length > 0) msg['raw_input_contents'] = raw;
  const per = new Map<string, boolean>();
  const outputs = doc['outputs'];
  if (Array.isArray(outputs)) {
    msg['outputs'] = outputs.map((o, i) => {
      if (!isRecord(o) || typeof o['name'] !== 'string') throw new WireError(`outputs[${i}] needs a "name" string`);
      const p = isRecord(o['parameters']) ? { ...o['parameters'] } : undefined;
      if (typeof p?.['binary_data'] === 'boolean') per.set(o['name'], p['binary_data']);
      if (p) delete p['binary_data'];
      const pp = parametersToProto(p);
      return pp && Object.keys(pp).length > 0 ? { name: o['name'], parameters: pp } : { name: o['name'] };
    });
  }
  return { message: wire.ModelInferRequest.encode(msg), binary: { all, per } };
}

/**
 * A ModelInferResponse as the REST answer the client asked for: outputs it wants as binary data
 * carry `binary_data_size` and follow the JSON header byte for byte (raw_output_contents as the
 * backend gave them); the others are JSON data, written exactly (-0 stays -0.0, 64-bit integers
 * keep every digit). A JSON output holding what JSON cannot carry (NaN, ±Infinity, bytes that are
 * not UTF-8) is a NotJsonTensor naming it: the client must ask for it as binary data.
 */
export function inferResponseToRest(res: PInferResponse, binary: BinaryOutputs): RestBody {
  const raw = res.raw_output_contents;
  if (raw.length > 0 && raw.length !== res.outputs.length) throw new WireError(`raw_output_contents has ${raw.length} entries for ${res.outputs.length} outputs`);
  const doc: Record<string, unknown> = { model_name: res.model_name };
  if (res.model_version !== '') doc['model_version'] = res.model_version;
  if (res.id !== '') doc['id'] = res.id;
  const parameters = parametersToJson(res.parameters, 'response');
  if (parameters) doc['parameters'] = parameters;
  const binaries: Uint8Array[] = [];
  doc['outputs'] = res.outputs.map((t, i) => {
    const where = `outputs[${i}]`;
    const { head, count } = tensorHead(t, where);
    const datatype = head['datatype'] as ReturnType<typeof datatypeOf>;
    const r = raw.length > 0 ? raw[i] : undefined;
    if (r !== undefined && t.contents) throw new WireError(`${where} has both contents and raw contents`);
    if (r === undefined && !t.contents) throw new WireError(`${where} has no data (neither contents nor raw contents)`);
    if (wantsBinary(binary, t.name)) {
      const bin = r ?? contentsToRaw(t.contents as NonNullable<PTensor['contents']>, datatype, count, where);
      if (r !== undefined) checkRaw(r, datatype, count, where);
      binaries.push(bin);
      return withSize(head, bin.byteLength);
    }
    let data: JsonElement[];
    try {
      data = r !== undefined ? rawToData(r, datatype, count, where) : contentsToData(t.contents as NonNullable<PTensor['contents']>, datatype, count, where);
    } catch (err) {
      if (err instanceof NotJsonTensor) throw new NotJsonTensor(`output "${t.name}": ${err.message}`);
      throw err;
    }
    const odd = data.find((v) => typeof v === 'number' && !Number.isFinite(v));
    if (odd !== undefined) throw new NotJsonTensor(`output "${t.name}" holds ${String(odd)}, which JSON cannot carry; ask for it as binary data (parameters.binary_data: true)`);
    return { ...head, data };
  });
  return frame(doc, binaries);
}

/** A decoded ModelInferResponse as a KServe v2 JSON answer. */
export function inferResponseToJson(res: PInferResponse): Record<string, unknown> {
  const raw = res.raw_output_contents;
  if (raw.length > 0 && raw.length !== res.outputs.length) throw new WireError(`raw_output_contents has ${raw.length} entries for ${res.outputs.length} outputs`);
  const doc: Record<string, unknown> = { model_name: res.model_name };
  if (res.model_version !== '') doc['model_version'] = res.model_version;
  if (res.id !== '') doc['id'] = res.id;
  const parameters = parametersToJson(res.parameters, 'response');
  if (parameters) doc['parameters'] = parameters;
  doc['outputs'] = res.outputs.map((t, i) => tensorToJson(t, raw.length > 0 ? raw[i] : undefined, `outputs[${i}]`));
  return doc;
}

/** A KServe v2 JSON answer as an encoded ModelInferResponse, raw or typed as the client asked. */
export function inferResponseFromJson(doc: unknown, raw: boolean, binary?: (i: number) => Uint8Array | undefined): Buffer {
  if (!isRecord(doc)) throw new WireError('answer must be a JSON object');
  const { tensors, raw: bufs } = tensorsFromJson(doc['outputs'] ?? [], 'outputs', raw, binary && ((_t, i) => binary(i)));
  const msg: Record<string, unknown> = { outputs: tensors };
  for (const k of ['model_name', 'model_version', 'id'] as const) if (typeof doc[k] === 'string') msg[k] = doc[k];
  const params = parametersToProto(doc['parameters']);
  if (params) msg['parameters'] = params;
  if (bufs.length > 0) msg['raw_output_contents'] = bufs;
  return wire.ModelInferResponse.encode(msg);
}

export function modelMetadataToJson(m: PModelMetadata): Record<string, unknown> {
  const tensor = (t: PModelMetadata['inputs'][number], where: string): Record<string, unknown> => ({
    name: t.name,
    datatype: t.datatype,
    // Metadata shapes may hold -1 (variable dimension).
    shape: t.shape.map((d) => {
      const n = typeof d === 'number' ? d : Number(d.toString());
      if (!Number.isSafeInteger(n) || n < -1) throw new WireError(`${where}.shape holds ${d.toString()}`);
      return n;
    }),
  });
  return {
    name: m.name,
    versions: [...m.versions],
    platform: m.platform,
    inputs: m.inputs.map((t, i) => tensor(t, `inputs[${i}]`)),
    outputs: m.outputs.map((t, i) => tensor(t, `outputs[${i}]`)),
  };
}

export function modelMetadataFromJson(doc: unknown): Buffer {
  if (!isRecord(doc)) throw new WireError('model metadata must be a JSON object');
  const tensors = (list: unknown): unknown[] =>
    Array.isArray(list)
      ? list.filter(isRecord).map((t) => ({ name: typeof t['name'] === 'string' ? t['name'] : '', datatype: typeof t['datatype'] === 'string' ? t['datatype'] : '', shape: Array.isArray(t['shape']) ? t['shape'].filter((d) => Number.isSafeInteger(d)) : [] }))
      : [];
  return wire.ModelMetadataResponse.encode({
    name: typeof doc['name'] === 'string' ? doc['name'] : '',
    versions: Array.isArray(doc['versions']) ? doc['versions'].map(String) : [],
    platform: typeof doc['platform'] === 'string' ? doc['platform'] : '',
    inputs: tensors(doc['inputs']),
    outputs: tensors(doc['outputs']),
  });
}

export function serverMetadataFromJson(doc: unknown): Buffer {
  const d = isRecord(doc) ? doc : {};
  return wire.ServerMetadataResponse.encode({
    name: typeof d['name'] === 'string' ? d['name'] : '',
    version: typeof d['version'] === 'string' ? d['version'] : '',
    extensions: Array.isArray(d['extensions']) ? d['extensions'].map(String) : [],
  });
}

/** A ready/live flag from a JSON answer (`{ "ready": true }`). */
export function flagFromJson(doc: unknown, key: 'ready' | 'live'): boolean {
  return isRecord(doc) && doc[key] === true;
}

export { shapeOf };
