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

/**
 * The two directions between HTTP statuses and gRPC codes, in one place: a gRPC backend's status
 * as a KServe REST backend would have answered it, and a REST backend's refusal as a gRPC client
 * expects it.
 */
/** A gRPC status as the HTTP status a KServe REST backend would have answered. */
export function httpStatusFor(code: number): number {
  switch (code) {
    case Code.OK: return 200;
    case Code.INVALID_ARGUMENT: case Code.FAILED_PRECONDITION: case Code.OUT_OF_RANGE: return 400;
    case Code.UNAUTHENTICATED: return 401;
    case Code.PERMISSION_DENIED: return 403;
    case Code.NOT_FOUND: return 404;
    case Code.ALREADY_EXISTS: case Code.ABORTED: return 409;
    case Code.RESOURCE_EXHAUSTED: return 429;
    case Code.UNIMPLEMENTED: return 501;
    case Code.DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}

/** A backend's own HTTP refusal (4xx) in gRPC's terms; it is the backend's answer, so no x-modelguard-error. */
export function statusForHttp(status: number): number {
  switch (status) {
    case 400: case 405: case 409: case 413: case 422: return Code.INVALID_ARGUMENT;
    case 401: return Code.UNAUTHENTICATED;
    case 403: return Code.PERMISSION_DENIED;
    case 404: return Code.NOT_FOUND;
    case 408: case 504: return Code.DEADLINE_EXCEEDED;
    case 429: return Code.RESOURCE_EXHAUSTED;
    case 501: return Code.UNIMPLEMENTED;
    case 502: case 503: return Code.UNAVAILABLE;
    default: return Code.UNKNOWN;
  }
}
