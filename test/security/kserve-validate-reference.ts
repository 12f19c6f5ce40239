/**
 * The KServe v2 infer validation as it was before it read bytes (src/security/kserve-validate.ts):
 * `JSON.parse`, then a walk of the document. Kept as the oracle the byte reader is compared with
 * (kserve-validate.test.ts) and as the baseline of bench/validate.ts. Not used by ModelGuard.
 */
import { MGError } from '../../src/core/errors.ts';
import { ELEMENT_SIZE, INT_RANGE, isKserveDatatype, type KserveDatatype } from '../../src/core/kserve.ts';

/** Largest element count accepted for one tensor (guards the shape product against overflow tricks). */
const MAX_ELEMENTS = 2 ** 31;

function bad(message: string): MGError {
  return new MGError('MG_BAD_REQUEST', `KServe v2 infer: ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why a leaf is not a valid element of `datatype`, or undefined when it is. */
function leafProblem(v: unknown, datatype: KserveDatatype, range: readonly [number, number] | undefined): string | undefined {
  if (datatype === 'BYTES') return typeof v === 'string' ? undefined : 'BYTES data must be strings';
  if (datatype === 'BOOL') return typeof v === 'boolean' ? undefined : 'BOOL data must be true or false';
  if (typeof v !== 'number' || !Number.isFinite(v)) return `${datatype} data must be finite numbers`;
  if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) return `${v} is not a valid ${datatype}`;
  return undefined;
}

/**
 * Counts leaf elements of data, checking each against the datatype. Data is flat, or nested in
 * row-major form exactly as deep as the shape: every leaf must sit at depth 1 or at depth `rank`.
 */
function countData(data: unknown[], datatype: KserveDatatype, where: string, rank: number): number {
  const range = INT_RANGE[datatype];
  // Flat data (the common case) in one loop; the first nested element sends it to the general walk.
  let flat = true;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Array.isArray(v)) {
      flat = false;
      break;
    }
    const problem = leafProblem(v, datatype, range);
    if (problem !== undefined) throw bad(`${where}: ${problem}`);
  }
  if (flat) return data.length;
  let n = 0;
  let leafDepth = 0;
  const stack: [unknown, number][] = [[data, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (Array.isArray(v)) {
      if (depth >= Math.max(1, rank)) throw bad(`${where}: data is nested deeper than its shape`);
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], depth + 1]);
      continue;
    }
    if (leafDepth === 0) leafDepth = depth;
    else if (depth !== leafDepth) throw bad(`${where}: data is nested unevenly`);
    if (depth !== 1 && depth !== rank) throw bad(`${where}: data must be flat or nested as deep as the shape`);
    n++;
    const problem = leafProblem(v, datatype, range);
    if (problem !== undefined) throw bad(`${where}: ${problem}`);
  }
  return n;
}

/**
 * Validates an infer request. `headerLength` is the `Inference-Header-Content-Length` value when the
 * binary-data extension is used (the JSON is the first `headerLength` bytes of the body).
 */
export function referenceValidate(body: Buffer, headerLength: number | undefined): void {
  if (headerLength !== undefined && (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length)) {
    throw bad(`Inference-Header-Content-Length ${headerLength} does not fit a body of ${body.length} bytes`);
  }
  const jsonBytes = headerLength === undefined ? body : body.subarray(0, headerLength);
  let doc: unknown;
  try {
    doc = JSON.parse(jsonBytes.toString('utf8'));
  } catch {
    throw bad('body is not valid JSON');
  }
  if (!isRecord(doc)) throw bad('body must be a JSON object');
  if (doc['id'] !== undefined && typeof doc['id'] !== 'string') throw bad('"id" must be a string');
  if (doc['parameters'] !== undefined && !isRecord(doc['parameters'])) throw bad('"parameters" must be an object');
  const inputs = doc['inputs'];
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad('body needs a non-empty "inputs" array');
  let binaryTotal = 0;
  const names = new Set<string>();
  for (let i = 0; i < inputs.length; i++) {
    const input: unknown = inputs[i];
    const where = `inputs[${i}]`;
    if (!isRecord(input)) throw bad(`${where} must be an object`);
    const { name, shape, datatype, data, parameters } = input;
    if (typeof name !== 'string' || name === '') throw bad(`${where}.name must be a non-empty string`);
    if (names.has(name)) throw bad(`input "${name}" given twice`);
    names.add(name);
    if (!isKserveDatatype(datatype)) {
      throw bad(`${where}.datatype must be one of ${Object.keys(ELEMENT_SIZE).join(', ')}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw bad(`${where}.shape must be an array of non-negative integers`);
    }
    let elements = 1;
    for (const d of shape as number[]) {
      elements *= d;
      if (elements > MAX_ELEMENTS) throw bad(`${where}.shape ${JSON.stringify(shape)} is too large`);
    }
    if (parameters !== undefined && !isRecord(parameters)) throw bad(`${where}.parameters must be an object`);
    const binarySize = parameters?.['binary_data_size'];
    if (binarySize !== undefined) {
      if (headerLength === undefined) throw bad(`${where} has binary_data_size but the request has no Inference-Header-Content-Length`);
      if (typeof binarySize !== 'number' || !Number.isInteger(binarySize) || binarySize < 0) {
        throw bad(`${where}.parameters.binary_data_size must be a non-negative integer`);
      }
      if (data !== undefined) throw bad(`${where} has both data and binary_data_size`);
      const size: number = ELEMENT_SIZE[datatype];
      if (size > 0 && binarySize !== elements * size) {
        throw bad(`${where}: shape ${JSON.stringify(shape)} of ${datatype} needs ${elements * size} bytes, binary_data_size is ${binarySize}`);
      }
      binaryTotal += binarySize;
      continue;
    }
    if (data === undefined) throw bad(`${where} has no data`);
    if (!Array.isArray(data)) throw bad(`${where}.data must be an array`);
    const count = countData(data, datatype, where, (shape as number[]).length);
    if (count !== elements) throw bad(`${where}: shape ${JSON.stringify(shape)} holds ${elements} elements, data has ${count}`);
  }
  const outputs = doc['outputs'];
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw bad('"outputs" must be an array');
    outputs.forEach((o: unknown, i) => {
      if (!isRecord(o) || typeof o['name'] !== 'string') throw bad(`outputs[${i}] needs a "name" string`);
    });
  }
  if (headerLength !== undefined && binaryTotal !== body.length - headerLength) {
    throw bad(`binary data is ${body.length - headerLength} bytes, the inputs declare ${binaryTotal}`);
  }
}
