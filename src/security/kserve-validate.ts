/**
 * KServe v2 (Open Inference Protocol) request validation at the edge of the system: a tensor whose
 * datatype, shape and data disagree never reaches an accelerator. Handles the JSON form and the
 * binary-data extension (a JSON header of `Inference-Header-Content-Length` bytes followed by raw
 * tensor bytes).
 *
 * The body is read once, as bytes, and never built into objects: a JSON tensor of 150,000 numbers
 * is checked without 150,000 boxed values and arrays on the heap (an edge box's memory is shared
 * with its models), and a small body takes about two thirds of `JSON.parse`'s time
 * (bench/validate.ts, docs/benchmarks.md). The reader checks full JSON syntax (RFC 8259; what
 * `JSON.parse` accepts, byte for byte) and collects the facts the checks need; the checks then run
 * in one fixed order, so a body with several faults gets the same answer wherever its keys stand.
 *
 * One rule is stricter than `JSON.parse`: a key the checks read may not appear twice in its object
 * (the top level's `id`, `parameters`, `inputs`, `outputs`; an input's fields and its
 * `binary_data_size`; an output's `name`). `JSON.parse` keeps the last of two, RapidJSON (Triton)
 * finds the first: a body checked under one reading would run under the other.
 */
import { MGError } from '../core/errors.ts';
import { ELEMENT_SIZE, INT_RANGE, type KserveDatatype } from '../core/kserve.ts';

/** Largest element count accepted for one tensor (guards the shape product against overflow tricks). */
const MAX_ELEMENTS = 2 ** 31;

function bad(message: string): MGError {
  return new MGError('MG_BAD_REQUEST', `KServe v2 infer: ${message}`);
}

const DATATYPES = Object.keys(ELEMENT_SIZE) as KserveDatatype[];
const DATATYPE_BYTES = DATATYPES.map((d) => Buffer.from(d, 'latin1'));

/** Keys the checks read, per object kind (index = bit in the object's seen-mask). */
const TOP_KEYS = ['id', 'parameters', 'inputs', 'outputs'] as const;
const INPUT_KEYS = ['name', 'shape', 'datatype', 'data', 'parameters'] as const;
const PARAMETER_KEYS = ['binary_data_size'] as const;
const OUTPUT_KEYS = ['name'] as const;
const bytesOf = (keys: readonly string[]): Buffer[] => keys.map((k) => Buffer.from(k, 'latin1'));
const TOP = bytesOf(TOP_KEYS);
const INPUT = bytesOf(INPUT_KEYS);
const PARAMETER = bytesOf(PARAMETER_KEYS);
const OUTPUT = bytesOf(OUTPUT_KEYS);

/** A fact that is present but of the wrong JSON type. */
const OTHER = -1;
/** A fact that is absent. */
const ABSENT = -2;

/** What one element of `inputs` holds, as read. */
interface InputFacts {
  object: boolean;
  /** The name (decoded), or OTHER / ABSENT. */
  name: string | number;
  /** Index into DATATYPES, OTHER (not a known datatype) or ABSENT. */
  datatype: number;
  /** The dimensions, or OTHER (not an array of non-negative integers) or ABSENT. */
  shape: number[] | number;
  /** 1 an object, OTHER, ABSENT. */
  parameters: number;
  /** parameters.binary_data_size: present (its number, or NaN when not a number) or undefined. */
  binarySize: number | undefined;
  /** Byte offset of data's `[` (data is an array), or OTHER / ABSENT. */
  dataAt: number;
  /** Leaves counted when data was checked as it was read, or -1 when it is checked later. */
  count: number;
  /** What was wrong with data when it was checked as read. */
  problem: string | undefined;
}

class NotJson extends Error {}
const notJson = new NotJson();

/** A byte reader over `b[0, end)` that accepts exactly RFC 8259 JSON; `pos` moves as it reads. */
class Reader {
  pos = 0;
  /** The last string read: contents between the quotes, and whether it has escapes. */
  strStart = 0;
  strEnd = 0;
  strEscaped = false;
  /** The last number read. */
  numStart = 0;
  numEnd = 0;
  /** An integer of at most 15 digits with no fraction or exponent: its exact value; NaN otherwise. */
  numInt = 0;
  /** No exponent and at most 308 integer digits: finite whatever its fraction. */
  numSurelyFinite = true;

  constructor(
    readonly b: Buffer,
    readonly end: number,
  ) {}

  /** Skips whitespace; the next byte, or -1 at the end. */
  ws(): number {
    const b = this.b;
    let i = this.pos;
    while (i < this.end) {
      const c = b[i] as number;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else {
        this.pos = i;
        return c;
      }
    }
    this.pos = i;
    return -1;
  }

  /** Reads a string at `pos` (its opening quote). */
  string(): void {
    const b = this.b;
    const end = this.end;
    let i = this.pos + 1;
    this.strStart = i;
    let escaped = false;
    for (;;) {
      if (i >= end) throw notJson;
      const c = b[i] as number;
      if (c === 0x22) break;
      if (c < 0x20) throw notJson;
      if (c === 0x5c) {
        escaped = true;
        const e = b[i + 1];
        if (e === 0x75) {
          if (i + 5 >= end) throw notJson;
          for (let k = i + 2; k < i + 6; k++) if (!isHex(b[k] as number)) throw notJson;
          i += 6;
          continue;
        }
        if (e !== 0x22 && e !== 0x5c && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) throw notJson;
        i += 2;
        continue;
      }
      i++;
    }
    this.strEnd = i;
    this.strEscaped = escaped;
    this.pos = i + 1;
  }

  /** The last string, decoded as `JSON.parse` would. */
  stringValue(): string {
    if (!this.strEscaped) return this.b.toString('utf8', this.strStart, this.strEnd);
    return JSON.parse(this.b.toString('utf8', this.strStart - 1, this.strEnd + 1)) as string;
  }

  /** Which of `keys` the last string is, or -1. */
  which(keys: readonly Buffer[]): number {
    if (this.strEscaped) {
      const s = this.stringValue();
      for (let k = 0; k < keys.length; k++) if ((keys[k] as Buffer).toString('latin1') === s) return k;
      return -1;
    }
    const len = this.strEnd - this.strStart;
    const b = this.b;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k] as Buffer;
      if (key.length !== len) continue;
      let i = 0;
      while (i < len && key[i] === b[this.strStart + i]) i++;
      if (i === len) return k;
    }
    return -1;
  }

  /** Reads a number at `pos` ('-' or a digit). */
  number(): void {
    const b = this.b;
    const end = this.end;
    let i = this.pos;
    this.numStart = i;
    const negative = b[i] === 0x2d;
    if (negative) i++;
    const intStart = i;
    let c = i < end ? (b[i] as number) : -1;
    let value = 0;
    if (c === 0x30) i++;
    else if (c >= 0x31 && c <= 0x39) {
      while (i < end && (c = b[i] as number) >= 0x30 && c <= 0x39) {
        value = value * 10 + (c - 0x30);
        i++;
      }
    } else throw notJson;
    const intDigits = i - intStart;
    let plain = true;
    if (i < end && b[i] === 0x2e) {
      plain = false;
      i++;
      const from = i;
      while (i < end && (c = b[i] as number) >= 0x30 && c <= 0x39) i++;
      if (i === from) throw notJson;
    }
    let exponent = false;
    if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
      plain = false;
      exponent = true;
      i++;
      if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
      const from = i;
      while (i < end && (c = b[i] as number) >= 0x30 && c <= 0x39) i++;
      if (i === from) throw notJson;
    }
    this.numEnd = i;
    this.numInt = plain && intDigits <= 15 ? (negative ? -value : value) : NaN;
    this.numSurelyFinite = !exponent && intDigits <= 308;
    this.pos = i;
  }

  /** The last number's value, exactly as `JSON.parse` gives it. */
  numberValue(): number {
    const v = this.numInt;
    if (v === v) return v;
    return Number(this.b.toString('latin1', this.numStart, this.numEnd));
  }

  literal(word: Buffer): void {
    const b = this.b;
    const i = this.pos;
    if (i + word.length > this.end) throw notJson;
    for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) throw notJson;
    this.pos = i + word.length;
  }

  /** After `{`: false for an empty object; else reads the first key and its colon. */
  firstKey(): boolean {
    this.pos++;
    const c = this.ws();
    if (c === 0x7d) {
      this.pos++;
      return false;
    }
    this.key(c);
    return true;
  }

  /** After a member: true when another follows (its key and colon read), false at `}`. */
  nextKey(): boolean {
    const c = this.ws();
    if (c === 0x7d) {
      this.pos++;
      return false;
    }
    if (c !== 0x2c) throw notJson;
    this.pos++;
    this.key(this.ws());
    return true;
  }

  private key(c: number): void {
    if (c !== 0x22) throw notJson;
    this.string();
    if (this.ws() !== 0x3a) throw notJson;
    this.pos++;
  }

  /** After `[`: false for an empty array; else `pos` is at its first element. */
  firstElement(): boolean {
    this.pos++;
    if (this.ws() === 0x5d) {
      this.pos++;
      return false;
    }
    return true;
  }

  /** After an element: true when another follows (`pos` at it), false at `]`. */
  nextElement(): boolean {
    const c = this.ws();
    if (c === 0x5d) {
      this.pos++;
      return false;
    }
    if (c !== 0x2c) throw notJson;
    this.pos++;
    return true;
  }

  /** Reads one value of any kind (its first byte, after whitespace, is returned). Iterative: no depth limit. */
  skip(): number {
    const first = this.ws();
    let depth = 0;
    // One bit per open container below 32 levels (1 = object); deeper ones in `deep`.
    let kinds = 0;
    let deep: boolean[] | undefined;
    let c = first;
    for (;;) {
      // A value at `pos` (c is its first byte).
      const object = c === 0x7b;
      if (object || c === 0x5b) {
        if (object ? this.firstKey() : this.firstElement()) {
          depth++;
          if (depth <= 32) kinds = object ? kinds | (1 << (depth - 1)) : kinds & ~(1 << (depth - 1));
          else (deep ??= [])[depth - 33] = object;
          c = this.ws();
          continue;
        }
      } else this.scalar(c);
      // Closes what ends here; on to the next value, or done.
      for (;;) {
        if (depth === 0) return first;
        const inObject = depth <= 32 ? ((kinds >>> (depth - 1)) & 1) === 1 : (deep as boolean[])[depth - 33] === true;
        if (inObject ? this.nextKey() : this.nextElement()) break;
        depth--;
      }
      c = this.ws();
    }
  }

  /** A string, number or literal at `pos`. */
  scalar(c: number): void {
    if (c === 0x22) this.string();
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) this.number();
    else if (c === 0x74) this.literal(TRUE);
    else if (c === 0x66) this.literal(FALSE);
    else if (c === 0x6e) this.literal(NULL);
    else throw notJson;
  }
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function duplicate(key: string): MGError {
  return bad(`key "${key}" given twice in one object (the server might read the other one)`);
}

/** Datatype index of the last string, OTHER when it names none. */
function datatypeOf(r: Reader): number {
  if (r.strEscaped) {
    const i = DATATYPES.indexOf(r.stringValue() as KserveDatatype);
    return i < 0 ? OTHER : i;
  }
  const i = r.which(DATATYPE_BYTES);
  return i < 0 ? OTHER : i;
}

/**
 * Reads data (an array at `pos`) of `datatype`, counting leaves: data is flat, or nested in
 * row-major form exactly as deep as the shape; every leaf must sit at depth 1 or at depth `rank`.
 * The first problem (in document order) is kept in `facts`; reading goes on to the end.
 */
function readData(r: Reader, datatype: KserveDatatype, rank: number, facts: InputFacts): void {
  const range = INT_RANGE[datatype];
  const maxDepth = Math.max(1, rank);
  let problem: string | undefined;
  let n = 0;
  let leafDepth = 0;
  let depth = 0;
  let c = r.ws();
  for (;;) {
    if (c === 0x5b) {
      // An array at `depth` (data itself is at 0).
      if (problem === undefined && depth >= maxDepth) problem = 'data is nested deeper than its shape';
      if (r.firstElement()) {
        depth++;
        c = r.ws();
        continue;
      }
    } else {
      if (problem === undefined) {
        if (leafDepth === 0) leafDepth = depth;
        else if (depth !== leafDepth) problem = 'data is nested unevenly';
        if (problem === undefined && depth !== 1 && depth !== rank) problem = 'data must be flat or nested as deep as the shape';
      }
      n++;
      const p = leaf(r, c, datatype, range);
      if (problem === undefined) problem = p;
    }
    for (;;) {
      if (depth === 0) {
        facts.count = n;
        facts.problem = problem;
        return;
      }
      if (r.nextElement()) break;
      depth--;
    }
    c = r.ws();
  }
}

/** Reads one leaf of data; why it is not a valid element of `datatype`, or undefined when it is. */
function leaf(r: Reader, c: number, datatype: KserveDatatype, range: readonly [number, number] | undefined): string | undefined {
  if (c === 0x7b) {
    r.skip();
    c = -1;
  } else r.scalar(c);
  if (datatype === 'BYTES') return c === 0x22 ? undefined : 'BYTES data must be strings';
  if (datatype === 'BOOL') return c === 0x74 || c === 0x66 ? undefined : 'BOOL data must be true or false';
  if (c !== 0x2d && (c < 0x30 || c > 0x39)) return `${datatype} data must be finite numbers`;
  if (range === undefined) return r.numSurelyFinite || Number.isFinite(r.numberValue()) ? undefined : `${datatype} data must be finite numbers`;
  const v = r.numberValue();
  if (!Number.isFinite(v)) return `${datatype} data must be finite numbers`;
  if (!Number.isInteger(v) || v < range[0] || v > range[1]) return `${v} is not a valid ${datatype}`;
  return undefined;
}

/** Reads an array of non-negative integers at `pos`; OTHER when it is anything else. */
function readShape(r: Reader): number[] | number {
  const dims: number[] = [];
  let ok = true;
  if (r.firstElement()) {
    do {
      const c = r.ws();
      if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        r.number();
        const v = r.numberValue();
        if (!Number.isInteger(v) || v < 0) ok = false;
        dims.push(v);
      } else {
        r.skip();
        ok = false;
      }
    } while (r.nextElement());
  }
  return ok ? dims : OTHER;
}

/** Reads one element of `inputs` at `pos`. */
function readInput(r: Reader): InputFacts {
  const facts: InputFacts = { object: false, name: ABSENT, datatype: ABSENT, shape: ABSENT, parameters: ABSENT, binarySize: undefined, dataAt: ABSENT, count: -1, problem: undefined };
  if (r.ws() !== 0x7b) {
    r.skip();
    return facts;
  }
  facts.object = true;
  let seen = 0;
  if (!r.firstKey()) return facts;
  do {
    const k = r.which(INPUT);
    if (k >= 0) {
      if ((seen & (1 << k)) !== 0) throw duplicate(INPUT_KEYS[k] as string);
      seen |= 1 << k;
    }
    const c = r.ws();
    if (k === 0) {
      // name
      if (c === 0x22) {
        r.string();
        facts.name = r.stringValue();
      } else {
        r.skip();
        facts.name = OTHER;
      }
    } else if (k === 1) {
      if (c === 0x5b) facts.shape = readShape(r);
      else {
        r.skip();
        facts.shape = OTHER;
      }
    } else if (k === 2) {
      if (c === 0x22) {
        r.string();
        facts.datatype = datatypeOf(r);
      } else {
        r.skip();
        facts.datatype = OTHER;
      }
    } else if (k === 3) {
      if (c !== 0x5b) {
        r.skip();
        facts.dataAt = OTHER;
      } else {
        facts.dataAt = r.pos;
        // Read and checked at once when its datatype and shape came first (the usual order).
        if (facts.datatype >= 0 && typeof facts.shape === 'object') readData(r, DATATYPES[facts.datatype] as KserveDatatype, facts.shape.length, facts);
        else r.skip();
      }
    } else if (k === 4) {
      if (c !== 0x7b) {
        r.skip();
        facts.parameters = OTHER;
      } else {
        facts.parameters = 1;
        readInputParameters(r, facts);
      }
    } else r.skip();
  } while (r.nextKey());
  return facts;
}

function readInputParameters(r: Reader, facts: InputFacts): void {
  let seen = false;
  if (!r.firstKey()) return;
  do {
    if (r.which(PARAMETER) === 0) {
      if (seen) throw duplicate(PARAMETER_KEYS[0]);
      seen = true;
      const c = r.ws();
      if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        r.number();
        facts.binarySize = r.numberValue();
      } else {
        r.skip();
        facts.binarySize = NaN;
      }
    } else r.skip();
  } while (r.nextKey());
}

/** Reads `outputs` (an array at `pos`): the index of the first element that is not an object with a string name, or -1. */
function readOutputs(r: Reader): number {
  let bad = -1;
  let i = 0;
  if (!r.firstElement()) return bad;
  do {
    let ok = false;
    if (r.ws() === 0x7b) {
      let seen = false;
      if (r.firstKey()) {
        do {
          if (r.which(OUTPUT) === 0) {
            if (seen) throw duplicate(OUTPUT_KEYS[0]);
            seen = true;
            if (r.ws() === 0x22) {
              r.string();
              ok = true;
            } else r.skip();
          } else r.skip();
        } while (r.nextKey());
      }
    } else r.skip();
    if (!ok && bad < 0) bad = i;
    i++;
  } while (r.nextElement());
  return bad;
}

/**
 * Validates an infer request. `headerLength` is the `Inference-Header-Content-Length` value when the
 * binary-data extension is used (the JSON is the first `headerLength` bytes of the body).
 */
export function validateKserveInfer(body: Buffer, headerLength: number | undefined): void {
  if (headerLength !== undefined && (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length)) {
    throw bad(`Inference-Header-Content-Length ${headerLength} does not fit a body of ${body.length} bytes`);
  }
  const r = new Reader(body, headerLength ?? body.length);
  // What the document holds (ABSENT, OTHER, or for the top level and parameters: 1).
  let object = false;
  let id = ABSENT;
  let parameters = ABSENT;
  let inputs: InputFacts[] | number = ABSENT;
  let outputs = ABSENT;
  let badOutput = -1;
  try {
    if (r.ws() !== 0x7b) r.skip();
    else {
      object = true;
      let seen = 0;
      if (r.firstKey()) {
        do {
          const k = r.which(TOP);
          if (k >= 0) {
            if ((seen & (1 << k)) !== 0) throw duplicate(TOP_KEYS[k] as string);
            seen |= 1 << k;
          }
          const c = r.ws();
          if (k === 0) {
            if (c === 0x22) {
              r.string();
              id = 1;
            } else {
              r.skip();
              id = OTHER;
            }
          } else if (k === 1) parameters = r.skip() === 0x7b ? 1 : OTHER;
          else if (k === 2) {
            if (c !== 0x5b) {
              r.skip();
              inputs = OTHER;
            } else {
              const list: InputFacts[] = [];
              if (r.firstElement()) {
                do list.push(readInput(r));
                while (r.nextElement());
              }
              inputs = list;
            }
          } else if (k === 3) {
            if (c !== 0x5b) {
              r.skip();
              outputs = OTHER;
            } else {
              badOutput = readOutputs(r);
              outputs = 1;
            }
          } else r.skip();
        } while (r.nextKey());
      }
    }
    if (r.ws() !== -1) throw notJson;
  } catch (err) {
    if (err instanceof NotJson) throw bad('body is not valid JSON');
    throw err;
  }
  if (!object) throw bad('body must be a JSON object');
  if (id === OTHER) throw bad('"id" must be a string');
  if (parameters === OTHER) throw bad('"parameters" must be an object');
  if (typeof inputs !== 'object' || inputs.length === 0) throw bad('body needs a non-empty "inputs" array');
  let binaryTotal = 0;
  for (let i = 0; i < inputs.length; i++) binaryTotal += checkInput(r, inputs, i, headerLength);
  if (outputs === OTHER) throw bad('"outputs" must be an array');
  if (badOutput >= 0) throw bad(`outputs[${badOutput}] needs a "name" string`);
  if (headerLength !== undefined && binaryTotal !== body.length - headerLength) {
    throw bad(`binary data is ${body.length - headerLength} bytes, the inputs declare ${binaryTotal}`);
  }
}

/** The checks of one input, in their fixed order; the bytes of binary data it declares. */
function checkInput(r: Reader, inputs: readonly InputFacts[], i: number, headerLength: number | undefined): number {
  const input = inputs[i] as InputFacts;
  const where = `inputs[${i}]`;
  if (!input.object) throw bad(`${where} must be an object`);
  const name = input.name;
  if (typeof name !== 'string' || name === '') throw bad(`${where}.name must be a non-empty string`);
  for (let j = 0; j < i; j++) if ((inputs[j] as InputFacts).name === name) throw bad(`input "${name}" given twice`);
  if (input.datatype < 0) throw bad(`${where}.datatype must be one of ${DATATYPES.join(', ')}`);
  const datatype = DATATYPES[input.datatype] as KserveDatatype;
  const shape = input.shape;
  if (typeof shape !== 'object') throw bad(`${where}.shape must be an array of non-negative integers`);
  let elements = 1;
  for (const d of shape) {
    elements *= d;
    if (elements > MAX_ELEMENTS) throw bad(`${where}.shape ${JSON.stringify(shape)} is too large`);
  }
  if (input.parameters === OTHER) throw bad(`${where}.parameters must be an object`);
  const binarySize = input.binarySize;
  if (binarySize !== undefined) {
    if (headerLength === undefined) throw bad(`${where} has binary_data_size but the request has no Inference-Header-Content-Length`);
    if (!Number.isInteger(binarySize) || binarySize < 0) throw bad(`${where}.parameters.binary_data_size must be a non-negative integer`);
    if (input.dataAt !== ABSENT) throw bad(`${where} has both data and binary_data_size`);
    const size: number = ELEMENT_SIZE[datatype];
    if (size > 0 && binarySize !== elements * size) {
      throw bad(`${where}: shape ${JSON.stringify(shape)} of ${datatype} needs ${elements * size} bytes, binary_data_size is ${binarySize}`);
    }
    return binarySize;
  }
  if (input.dataAt === ABSENT) throw bad(`${where} has no data`);
  if (input.dataAt === OTHER) throw bad(`${where}.data must be an array`);
  if (input.count < 0) {
    // Data came before its datatype or shape: read again now that both are known.
    r.pos = input.dataAt;
    readData(r, datatype, shape.length, input);
  }
  if (input.problem !== undefined) throw bad(`${where}: ${input.problem}`);
  if (input.count !== elements) throw bad(`${where}: shape ${JSON.stringify(shape)} holds ${elements} elements, data has ${input.count}`);
  return 0;
}
