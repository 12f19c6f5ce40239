/**
 * Top-level fields of a JSON object's text, found and replaced without parsing the rest. A KServe
 * answer's `model_name` sits beside tensors of megabytes: renaming it must neither re-encode them
 * (every other byte stays as the backend wrote it, -0.0 and 2^63−1 included) nor cost a parse.
 *
 *   {"model_name":"ident","outputs":[ …skipped by counting brackets… ]}
 *                 └─span─┘
 *
 * One pass, no recursion (hostile nesting cannot overflow the stack); text the scan cannot follow
 * is reported, never guessed at.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Where a value's text is: bytes [start, end). */
export interface Span {
  readonly start: number;
  readonly end: number;
}

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** End (exclusive) of the string whose opening quote is at `from`, or -1 when it does not end. */
function stringEnd(bytes: Uint8Array, from: number): number {
  for (let j = from + 1; j < bytes.length; j++) {
    const b = bytes[j];
    if (b === BACKSLASH) j++;
    else if (b === QUOTE) return j + 1;
  }
  return -1;
}

/** End (exclusive) of the value starting at `at`, or -1 when the scan cannot follow it. */
function valueEnd(bytes: Uint8Array, at: number): number {
  const b = bytes[at];
  if (b === undefined) return -1;
  if (b === QUOTE) return stringEnd(bytes, at);
  if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
    let depth = 0;
    for (let i = at; i < bytes.length; i++) {
      const c = bytes[i];
      if (c === QUOTE) {
        i = stringEnd(bytes, i) - 1;
        if (i < 0) return -1;
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++;
      else if ((c === CLOSE_OBJECT || c === CLOSE_ARRAY) && --depth === 0) return i + 1;
    }
    return -1;
  }
  // A number, true, false or null: up to the next separator.
  let i = at;
  while (i < bytes.length && bytes[i] !== COMMA && bytes[i] !== CLOSE_OBJECT && !isSpace(bytes[i])) i++;
  return i > at ? i : -1;
}

/** Whether the key's text (quotes included) names `key`; escapes are decoded, so `"model\u005fname"` matches too. */
function keyIs(bytes: Uint8Array, start: number, end: number, key: Buffer): boolean {
  const inner = bytes.subarray(start + 1, end - 1);
  if (!inner.includes(BACKSLASH)) return Buffer.from(inner.buffer, inner.byteOffset, inner.byteLength).equals(key);
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8')) === key.toString('utf8');
  } catch {
    return false;
  }
}

/**
 * The spans of every value of top-level `key` in a JSON object's text (a repeated key is found each
 * time: JSON.parse keeps the last, a client may keep the first), or undefined when the text is not
 * one JSON object this scan can follow.
 */
export function topLevelSpans(bytes: Uint8Array, key: string): Span[] | undefined {
  const want = Buffer.from(key, 'utf8');
  const found: Span[] = [];
  let i = 0;
  const ws = (): void => {
    while (isSpace(bytes[i])) i++;
  };
  ws();
  if (bytes[i] !== OPEN_OBJECT) return undefined;
  i++;
  ws();
  if (bytes[i] === CLOSE_OBJECT) return found;
  for (;;) {
    ws();
    if (bytes[i] !== QUOTE) return undefined;
    const keyEnd = stringEnd(bytes, i);
    if (keyEnd < 0) return undefined;
    const matches = keyIs(bytes, i, keyEnd, want);
    i = keyEnd;
    ws();
    if (bytes[i] !== COLON) return undefined;
    i++;
    ws();
    const start = i;
    const end = valueEnd(bytes, i);
    if (end < 0) return undefined;
    if (matches) found.push({ start, end });
    i = end;
    ws();
    if (bytes[i] === CLOSE_OBJECT) return found;
    if (bytes[i] !== COMMA) return undefined;
    i++;
  }
}

/**
 * The text with top-level `key` set to `json` (a JSON value's text): every occurrence replaced, or
 * the field put first when there is none. Undefined when the text is not a JSON object.
 */
export function setTopLevel(bytes: Buffer, key: string, json: string): Buffer | undefined {
  const spans = topLevelSpans(bytes, key);
  if (spans === undefined) return undefined;
  const value = Buffer.from(json, 'utf8');
  if (spans.length === 0) {
    const open = bytes.indexOf(OPEN_OBJECT);
    let j = open + 1;
    while (isSpace(bytes[j])) j++;
    const empty = bytes[j] === CLOSE_OBJECT;
    return Buffer.concat([bytes.subarray(0, open + 1), Buffer.from(`${JSON.stringify(key)}:`), value, Buffer.from(empty ? '' : ','), bytes.subarray(open + 1)]);
  }
  const parts: Buffer[] = [];
  let at = 0;
  for (const s of spans) {
    parts.push(bytes.subarray(at, s.start), value);
    at = s.end;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts);
}
