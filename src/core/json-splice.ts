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

/** Where a value's text is: bytes [start, end). */
export interface Span {
  readonly start: number;
  readonly end: number;
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * The text is scanned as latin1 (one character per byte, so indices are byte offsets) with native
 * regular expressions jumping from one structural character to the next: a tensor's data is crossed
 * without a JavaScript step per byte.
 */
const IN_STRING = /["\\]/g;
const STRUCTURE = /["[\]{}]/g;

/** End (exclusive) of the string whose opening quote is at `from`, or -1 when it does not end. */
function stringEnd(text: string, from: number): number {
  IN_STRING.lastIndex = from + 1;
  for (;;) {
    const m = IN_STRING.exec(text);
    if (m === null) return -1;
    if (text.charCodeAt(m.index) === QUOTE) return m.index + 1;
    IN_STRING.lastIndex = m.index + 2; // an escape: skip the escaped character
  }
}

/** End (exclusive) of the value starting at `at`, or -1 when the scan cannot follow it. */
function valueEnd(text: string, at: number): number {
  const b = text.charCodeAt(at);
  if (Number.isNaN(b)) return -1;
  if (b === QUOTE) return stringEnd(text, at);
  if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
    let depth = 0;
    STRUCTURE.lastIndex = at;
    for (;;) {
      const m = STRUCTURE.exec(text);
      if (m === null) return -1;
      const c = text.charCodeAt(m.index);
      if (c === QUOTE) {
        const end = stringEnd(text, m.index);
        if (end < 0) return -1;
        STRUCTURE.lastIndex = end;
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++;
      else if (--depth === 0) return m.index + 1;
    }
  }
  // A number, true, false or null: up to the next separator.
  let i = at;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === COMMA || c === CLOSE_OBJECT || isSpace(c)) break;
    i++;
  }
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
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const found: Span[] = [];
  let i = 0;
  const at = (): number => text.charCodeAt(i);
  const ws = (): void => {
    while (isSpace(at())) i++;
  };
  ws();
  if (at() !== OPEN_OBJECT) return undefined;
  i++;
  ws();
  if (at() === CLOSE_OBJECT) return found;
  for (;;) {
    ws();
    if (at() !== QUOTE) return undefined;
    const keyEnd = stringEnd(text, i);
    if (keyEnd < 0) return undefined;
    const matches = keyIs(bytes, i, keyEnd, want);
    i = keyEnd;
    ws();
    if (at() !== COLON) return undefined;
    i++;
    ws();
    const start = i;
    const end = valueEnd(text, i);
    if (end < 0) return undefined;
    if (matches) found.push({ start, end });
    i = end;
    ws();
    if (at() === CLOSE_OBJECT) return found;
    if (at() !== COMMA) return undefined;
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
    while (isSpace(bytes[j] ?? -1)) j++;
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
