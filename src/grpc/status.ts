/** gRPC status codes as plain numbers (grpc-js's enum does not compare with the numbers on the wire). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/**
 * Longest grpc-message a ModelGuard answer carries once percent-encoded. The trailer shares one
 * HTTP/2 header block with the others, which a client refuses above its limit (often 8–16 KiB);
 * a status that cannot be sent would leave the call, and the connection's next call, hanging.
 */
export const MAX_GRPC_MESSAGE_BYTES = 4096;

/**
 * The status details as they may be sent: well-formed UTF-16 (a lone surrogate would make the
 * transport's percent-encoding throw), and cut with an ellipsis so that its percent-encoded form
 * (gRPC spec: bytes outside 0x20–0x7E and `%` become `%XX`; grpc-js applies encodeURI, which
 * encodes those and a few more) fits
 * MAX_GRPC_MESSAGE_BYTES, whatever a client or a backend put in it.
 */
export function grpcDetails(details: string): string {
  const text = details.replace(LONE_SURROGATE, '\uFFFD');
  if (encodedLength(text) <= MAX_GRPC_MESSAGE_BYTES) return text;
  let out = '';
  let size = 0;
  const budget = MAX_GRPC_MESSAGE_BYTES - 40;
  for (const ch of text) {
    const n = encodedLength(ch);
    if (size + n > budget) break;
    out += ch;
    size += n;
  }
  return `${out}… (${Buffer.byteLength(text)} bytes in all)`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Length of `text` as grpc-js sends it: encodeURI, a superset of the spec's percent-encoding. */
function encodedLength(text: string): number {
  return encodeURI(text).length;
}
