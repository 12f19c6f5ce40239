/**
 * Whole KServe v2 messages between gRPC and JSON. The JSON form is the protocol-neutral one inside
 * ModelGuard (the broker, limits and HTTP backends see KServe v2 REST bodies); these functions are
 * the only place the two forms meet.
 *
 * Answers keep the client's form: a request sent with raw contents is answered with
 * raw_output_contents, a request with typed contents with typed contents (FP16/BF16 outputs have no
 * typed form, so an answer holding one is raw throughout).
 */
import { wire, type PInferRequest, type PInferResponse, type PModelMetadata } from './wire.ts';
import { isRecord, parametersToJson, parametersToProto, shapeOf, tensorFromJson, tensorToJson, WireError } from './tensors.ts';

export { WireError } from './tensors.ts';

/** A decoded ModelInferRequest as a KServe v2 JSON body, checked; `raw` says which form the client used. */
export function inferRequestToJson(req: PInferRequest): { doc: Record<string, unknown>; raw: boolean } {
  const where = (i: number): string => `inputs[${i}]`;
  if (req.inputs.length === 0) throw new WireError('inputs must not be empty');
  const rawAll = req.raw_input_contents;
  const raw = rawAll.length > 0;
  if (raw && rawAll.length !== req.inputs.length) {
    throw new WireError(`raw_input_contents has ${rawAll.length} entries for ${req.inputs.length} inputs`);
  }
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

function tensorsFromJson(list: unknown, what: string, preferRaw: boolean, binary?: (t: unknown, i: number) => Buffer | undefined): { tensors: Record<string, unknown>[]; raw: Buffer[] } {
  if (!Array.isArray(list)) throw new WireError(`"${what}" must be an array`);
  // Raw for all when asked, when any tensor is FP16/BF16 (no typed form) or arrived as binary data.
  const raw = preferRaw || list.some((t, i) => (isRecord(t) && RAW_ONLY.has(t['datatype'] as string)) || binary?.(t, i) !== undefined);
  const tensors: Record<string, unknown>[] = [];
  const bufs: Buffer[] = [];
  list.forEach((t, i) => {
    const r = tensorFromJson(t, raw, binary?.(t, i), `${what}[${i}]`);
    tensors.push(r.tensor);
    if (r.raw) bufs.push(r.raw);
  });
  return { tensors, raw: bufs };
}

/**
 * A KServe v2 JSON infer body (optionally with the binary-data extension: a JSON header of
 * `headerLength` bytes, then the tensors' bytes) as an encoded ModelInferRequest.
 */
export function inferRequestFromJson(body: Buffer, headerLength: number | undefined, model: string, version: string | undefined): Buffer {
  const json = headerLength === undefined ? body : body.subarray(0, headerLength);
  let doc: unknown;
  try {
    doc = JSON.parse(json.toString('utf8'));
  } catch {
    throw new WireError('body is not valid JSON');
  }
  if (!isRecord(doc)) throw new WireError('body must be a JSON object');
  let offset = headerLength ?? 0;
  const binary = (t: unknown): Buffer | undefined => {
    const size = isRecord(t) && isRecord(t['parameters']) ? t['parameters']['binary_data_size'] : undefined;
    if (size === undefined) return undefined;
    if (headerLength === undefined || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || offset + size > body.length) {
      throw new WireError('binary_data_size does not fit the body');
    }
    return body.subarray(offset, offset + size);
  };
  // Binary slices are taken in input order, exactly once each.
  const slices = new Map<unknown, Buffer | undefined>();
  const inputsJson = doc['inputs'];
  if (Array.isArray(inputsJson)) {
    for (const t of inputsJson) {
      const b = binary(t);
      if (b) offset += b.length;
      slices.set(t, b);
    }
  }
  const { tensors, raw } = tensorsFromJson(inputsJson, 'inputs', false, (t) => slices.get(t));
  if (tensors.length === 0) throw new WireError('inputs must not be empty');
  const msg: Record<string, unknown> = { model_name: model, inputs: tensors };
  if (version !== undefined) msg['model_version'] = version;
  if (typeof doc['id'] === 'string') msg['id'] = doc['id'];
  const params = parametersToProto(doc['parameters']);
  if (params) msg['parameters'] = params;
  if (raw.length > 0) msg['raw_input_contents'] = raw;
  const outputs = doc['outputs'];
  if (Array.isArray(outputs)) {
    msg['outputs'] = outputs.map((o, i) => {
      if (!isRecord(o) || typeof o['name'] !== 'string') throw new WireError(`outputs[${i}] needs a "name" string`);
      const p = isRecord(o['parameters']) ? { ...o['parameters'] } : undefined;
      if (p) delete p['binary_data'];
      const pp = parametersToProto(p);
      return pp && Object.keys(pp).length > 0 ? { name: o['name'], parameters: pp } : { name: o['name'] };
    });
  }
  return wire.ModelInferRequest.encode(msg);
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
export function inferResponseFromJson(doc: unknown, raw: boolean): Buffer {
  if (!isRecord(doc)) throw new WireError('answer must be a JSON object');
  const { tensors, raw: bufs } = tensorsFromJson(doc['outputs'] ?? [], 'outputs', raw);
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
