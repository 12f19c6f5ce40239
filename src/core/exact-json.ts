/**
 * JSON that keeps every bit of a tensor's numbers where ModelGuard re-encodes a body:
 *
 * - `parseExact` reads integers beyond ±2^53 as bigint (JSON.parse would round 2^63−1 to 2^63);
 *   bodies without a 16-digit run take JSON.parse's fast path.
 * - `stringifyExact` writes -0 as `-0.0` (JSON.stringify writes `0`) and bigint as its digits, and
 *   refuses NaN and ±Infinity, which JSON cannot carry (JSON.stringify writes `null`), naming where.
 */

export class NotJsonError extends Error {
  constructor(
    message: string,
    /** Where the value sits, as a path like `outputs[0].data[3]`. */
    readonly path: string,
  ) {
    super(message);
    this.name = 'NotJsonError';
  }
}

const LONG_DIGITS = /\d{16}/;
/** Deepest nesting the exact parser follows (tensors nest as deep as their rank): hostile nesting is refused, not a stack overflow. */
const MAX_DEPTH = 64;

/** JSON.parse, with integers outside the safe range as bigint. Throws SyntaxError on bad JSON. */
export function parseExact(text: string): unknown {
  if (!LONG_DIGITS.test(text)) return JSON.parse(text) as unknown;
  // Validate with the native parser first: the hand parser below then only meets valid JSON.
  JSON.parse(text);
  return new ExactParser(text).value();
}

class ExactParser {
  private at = 0;
  private depth = 0;
  constructor(private readonly s: string) {}

  private ws(): void {
    const s = this.s;
    while (this.at < s.length) {
      const c = s.charCodeAt(this.at);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.at++;
    }
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.at];
    if ((c === '{' || c === '[') && ++this.depth > MAX_DEPTH) throw new SyntaxError(`JSON nested deeper than ${MAX_DEPTH}`);
    if (c === '{') {
      this.at++;
      const out: Record<string, unknown> = {};
      this.ws();
      if (this.s[this.at] === '}') return this.at++, this.depth--, out;
      for (;;) {
        this.ws();
        const k = this.string();
        this.ws();
        this.at++; // ':'
        const v = this.value();
        // JSON.parse semantics: a "__proto__" key is an own property, not the prototype.
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        this.ws();
        if (this.s[this.at++] === '}') return this.depth--, out;
      }
    }
    if (c === '[') {
      this.at++;
      const out: unknown[] = [];
      this.ws();
      if (this.s[this.at] === ']') return this.at++, this.depth--, out;
      for (;;) {
        out.push(this.value());
        this.ws();
        if (this.s[this.at++] === ']') return this.depth--, out;
      }
    }
    if (c === '"') return this.string();
    if (c === 't') return (this.at += 4), true;
    if (c === 'f') return (this.at += 5), false;
    if (c === 'n') return (this.at += 4), null;
    return this.number();
  }

  private string(): string {
    const start = this.at;
    this.at++;
    const s = this.s;
    while (s[this.at] !== '"') this.at += s[this.at] === '\\' ? 2 : 1;
    this.at++;
    return JSON.parse(s.slice(start, this.at)) as string;
  }

  private number(): number | bigint {
    const m = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
    m.lastIndex = this.at;
    const r = m.exec(this.s) as RegExpExecArray;
    this.at = m.lastIndex;
    const text = r[0];
    const n = Number(text);
    if (r[1] === undefined && r[2] === undefined && !Number.isSafeInteger(n)) return BigInt(text);
    return n;
  }
}

/** JSON.stringify for plain data (no toJSON, no replacer), exact for -0 and bigint; refuses NaN and ±Infinity. */
export function stringifyExact(value: unknown): string {
  const out: string[] = [];
  write(value, out, '');
  return out.join('');
}

function write(v: unknown, out: string[], path: string): void {
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) throw new NotJsonError(`${path || 'value'} is ${String(v)}, which JSON cannot carry`, path);
      out.push(Object.is(v, -0) ? '-0.0' : String(v));
      return;
    case 'bigint':
      out.push(v.toString());
      return;
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'object':
      if (v === null) {
        out.push('null');
        return;
      }
      if (Array.isArray(v)) {
        out.push('[');
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out.push(',');
          const e: unknown = v[i];
          // Numbers inline: a tensor's data array is the hot loop.
          if (typeof e === 'number' && Number.isFinite(e) && !Object.is(e, -0)) out.push(String(e));
          else write(e === undefined ? null : e, out, `${path}[${i}]`);
        }
        out.push(']');
        return;
      }
      if (Buffer.isBuffer(v)) throw new NotJsonError(`${path || 'value'} is binary`, path);
      {
        out.push('{');
        let first = true;
        for (const [k, e] of Object.entries(v)) {
          if (e === undefined || typeof e === 'function') continue;
          if (!first) out.push(',');
          first = false;
          out.push(JSON.stringify(k), ':');
          write(e, out, path === '' ? k : `${path}.${k}`);
        }
        out.push('}');
      }
      return;
    default:
      out.push('null');
  }
}
