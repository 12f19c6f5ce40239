/**
 * The KServe v2 / Triton binary-data extension's framing, as pure functions (no I/O).
 *
 *   body = | JSON header (Inference-Header-Content-Length bytes) | tensor 0 bytes | tensor 1 bytes | …
 *
 * Each tensor sent as binary declares `parameters.binary_data_size` in the header, in the order its
 * bytes follow. A body without the header field is one plain JSON object.
 */

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/**
 * A cheap structural check: one JSON object, complete (first and last non-blank bytes are braces).
 * It catches truncated bodies, HTML error pages and plain text without parsing every tensor.
 */
export function isJsonObjectFrame(buf: Uint8Array): boolean {
  let i = 0;
  let j = buf.length - 1;
  while (i <= j && isSpace(buf[i])) i++;
  while (j >= i && isSpace(buf[j])) j--;
  return j > i && buf[i] === 0x7b && buf[j] === 0x7d;
}

/** The header length an `Inference-Header-Content-Length` value gives, or undefined if it is not a byte count. */
export function parseHeaderLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d{1,15}\s*$/.test(value)) return undefined;
  return Number(value);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sum of `binary_data_size` over a list of tensors in a parsed header; undefined if one is not a byte count. */
export function declaredBinaryBytes(tensors: unknown): number | undefined {
  if (tensors === undefined) return 0;
  if (!Array.isArray(tensors)) return undefined;
  let total = 0;
  for (const t of tensors) {
    const size = isRecord(t) && isRecord(t['parameters']) ? t['parameters']['binary_data_size'] : undefined;
    if (size === undefined) continue;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return undefined;
    total += size;
  }
  return total;
}

/**
 * Checks a KServe infer answer as its framing promises: without `Inference-Header-Content-Length`
 * one complete JSON object; with it, a header that is a complete JSON object whose outputs'
 * `binary_data_size` values add up to exactly the bytes after it. The tensor bytes are not read.
 * Returns undefined when the answer is well formed, else what is wrong.
 */
export function checkKserveAnswer(body: Buffer, headerLengthValue: string | undefined): string | undefined {
  if (headerLengthValue === undefined) return isJsonObjectFrame(body) ? undefined : 'invalid JSON, not one complete object';
  const headerLength = parseHeaderLength(headerLengthValue);
  if (headerLength === undefined) return `Inference-Header-Content-Length "${headerLengthValue}" is not a byte count`;
  if (headerLength > body.length) return `Inference-Header-Content-Length ${headerLength} is past the end of a ${body.length}-byte body`;
  const header = body.subarray(0, headerLength);
  if (!isJsonObjectFrame(header)) return 'binary-data header is not one complete JSON object';
  let doc: unknown;
  try {
    doc = JSON.parse(header.toString('utf8'));
  } catch {
    return 'binary-data header is not valid JSON';
  }
  const declared = isRecord(doc) ? declaredBinaryBytes(doc['outputs']) : undefined;
  if (declared === undefined) return 'binary-data header has a malformed binary_data_size';
  const rest = body.length - headerLength;
  if (declared !== rest) return `outputs declare ${declared} binary bytes, ${rest} follow the header`;
  return undefined;
}

/** A framed body: the header's JSON text, then each buffer in order. */
export function joinFrame(header: string, binaries: readonly Uint8Array[]): { body: Buffer; headerLength: number } {
  const head = Buffer.from(header, 'utf8');
  return { body: Buffer.concat([head, ...binaries]), headerLength: head.length };
}
