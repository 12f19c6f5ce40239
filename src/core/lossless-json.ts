/**
 * JSON that keeps every number exactly as written. `JSON.parse` turns `9007199254740993` into
 * `9007199254740992` and `-0.0` into a value `JSON.stringify` prints as `0`; a gateway that rebuilds
 * a tensor body (batching merges and splits them) must not change one bit of it. Numbers are kept as
 * their source text; everything else is plain JSON. Depth is bounded: hostile nesting is refused
 * instead of overflowing the stack.
 */

/** A number as its source text. */
export class RawNumber {
  constructor(readonly text: string) {}
}

export type LosslessValue = null | boolean | string | RawNumber | LosslessValue[] | { [key: string]: LosslessValue };

export class LosslessJsonError extends Error {}

/** Deepest nesting accepted (KServe tensors nest as deep as their rank; 64 is far beyond any). */
export const MAX_DEPTH = 64;

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

export function parseLossless(text: string, maxDepth = MAX_DEPTH): LosslessValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new LosslessJsonError(`${what} at position ${i}`);
  };
  const space = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
  };
  const literal = (word: string, value: LosslessValue): LosslessValue => {
    if (!text.startsWith(word, i)) fail('unexpected token');
    i += word.length;
    return value;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return undefined;
    i = re.lastIndex;
    return m[0];
  };
  const value = (depth: number): LosslessValue => {
    space();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      i++;
      space();
      if (c === '[') {
        const arr: LosslessValue[] = [];
        if (text[i] === ']') {
          i++;
          return arr;
        }
        for (;;) {
          arr.push(value(depth + 1));
          space();
          if (text[i] === ',') i++;
          else if (text[i] === ']') {
            i++;
            return arr;
          } else fail('expected , or ]');
        }
      }
      const obj: { [key: string]: LosslessValue } = {};
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        space();
        const key = match(STRING) ?? fail('expected a string key');
        space();
        if (text[i] !== ':') fail('expected :');
        i++;
        Object.defineProperty(obj, JSON.parse(key) as string, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
        space();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return obj;
        } else fail('expected , or }');
      }
    }
    if (c === '"') return JSON.parse(match(STRING) ?? fail('bad string')) as string;
    if (c === 't') return literal('true', true);
    if (c === 'f') return literal('false', false);
    if (c === 'n') return literal('null', null);
    const num = match(NUMBER);
    if (num === undefined) fail('unexpected token');
    return new RawNumber(num as string);
  };
  const v = value(0);
  space();
  if (i !== text.length) fail('unexpected data after the value');
  return v;
}

export function stringifyLossless(v: LosslessValue): string {
  if (v === null) return 'null';
  if (v instanceof RawNumber) return v.text;
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stringifyLossless).join(',')}]`;
  return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${stringifyLossless(x)}`).join(',')}}`;
}

export function isLosslessObject(v: LosslessValue | undefined): v is { [key: string]: LosslessValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RawNumber);
}

/** A non-negative integer written as a JSON number (shapes, sizes), or undefined. */
export function losslessCount(v: LosslessValue | undefined): number | undefined {
  if (!(v instanceof RawNumber) || !/^\d+$/.test(v.text)) return undefined;
  const n = Number(v.text);
  return Number.isSafeInteger(n) ? n : undefined;
}
