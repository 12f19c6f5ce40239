/**
 * The one registry of ModelGuard outcome codes. Adapters map a code to their protocol (HTTP status,
 * gRPC status, MQTT reply) from this table only; nothing else in the pipeline knows about protocols.
 * docs/errors.md documents every code, and a test keeps the two in step.
 */
import { Code } from './grpc-status.ts';


export interface ErrorSpec {
  /** HTTP status an adapter answers with. */
  readonly http: number;
  /** gRPC status code. */
  readonly grpc: number;
  /** Whether the answer carries Retry-After (the client may try again later). */
  readonly retryable: boolean;
  /** Default human message. */
  readonly message: string;
}

export const ERRORS = {
  MG_UNAUTHENTICATED: { http: 401, grpc: Code.UNAUTHENTICATED, retryable: false, message: 'missing or invalid credentials' },
  MG_FORBIDDEN: { http: 403, grpc: Code.PERMISSION_DENIED, retryable: false, message: 'not allowed' },
  MG_MODEL_NOT_FOUND: { http: 404, grpc: Code.NOT_FOUND, retryable: false, message: 'unknown model' },
  MG_BAD_REQUEST: { http: 400, grpc: Code.INVALID_ARGUMENT, retryable: false, message: 'malformed request' },
  MG_TOO_LARGE: { http: 413, grpc: Code.RESOURCE_EXHAUSTED, retryable: false, message: 'request body over limit' },
  MG_RATE_LIMITED: { http: 429, grpc: Code.RESOURCE_EXHAUSTED, retryable: true, message: 'app rate limit reached' },
  MG_QUEUE_FULL: { http: 429, grpc: Code.RESOURCE_EXHAUSTED, retryable: true, message: 'service group queue is full' },
  MG_QUEUE_TIMEOUT: { http: 503, grpc: Code.DEADLINE_EXCEEDED, retryable: true, message: 'deadline passed while queued' },
  MG_NO_BACKEND: { http: 503, grpc: Code.UNAVAILABLE, retryable: true, message: 'no healthy backend endpoint' },
  MG_BACKEND_TIMEOUT: { http: 504, grpc: Code.DEADLINE_EXCEEDED, retryable: false, message: 'backend timed out' },
  MG_BACKEND_ERROR: { http: 502, grpc: Code.UNAVAILABLE, retryable: false, message: 'backend failed' },
  MG_INTERNAL: { http: 500, grpc: Code.INTERNAL, retryable: false, message: 'internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Outcome labels for metrics and logs: every error code plus the two non-error endings. */
export type OutcomeCode = 'OK' | 'CANCELLED' | ErrorCode;

/**
 * Longest message an MGError carries, in characters. Messages travel in headers (gRPC's
 * grpc-message trailer, the HTTP/2 header block) where a peer refuses a block over its limit
 * (16 KiB by default for many), so no input a client sends may make one unbounded.
 */
export const MAX_MESSAGE_CHARS = 1024;
/** Longest piece of client input (a model name, a topic, a method path) echoed in a message. */
export const MAX_ECHO_CHARS = 256;

/**
 * Client input as it appears in an error message: quoted, and when longer than `max` its first
 * `max` characters, an ellipsis and the original length (`"aaaa…" (100000 chars)`), so a huge
 * name cannot make the answer itself too large to send.
 */
export function echo(input: string, max = MAX_ECHO_CHARS): string {
  if (input.length <= max) return JSON.stringify(input);
  return `${JSON.stringify(input.slice(0, max)).slice(0, -1)}…" (${input.length} chars)`;
}

/** A message cut to MAX_MESSAGE_CHARS (a last guard for messages built from untrusted text). */
export function boundMessage(message: string): string {
  return message.length <= MAX_MESSAGE_CHARS ? message : `${message.slice(0, MAX_MESSAGE_CHARS - 30)}… (${message.length} chars in all)`;
}

export interface MGErrorOptions {
  /** Seconds the client should wait before retrying (retryable codes). */
  retryAfterMs?: number;
  /** Overrides the registry's HTTP status where the protocol demands it (405 for a wrong method). */
  httpStatus?: number;
  /** Extra headers for HTTP answers (Allow for 405). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** A governed rejection or failure: an ordinary outcome with a code, not a crash. */
export class MGError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;
  readonly httpStatus: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, opts: MGErrorOptions = {}) {
    super(message === undefined ? ERRORS[code].message : boundMessage(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MGError';
    this.code = code;
    this.retryAfterMs = opts.retryAfterMs;
    this.httpStatus = opts.httpStatus ?? ERRORS[code].http;
    this.headers = opts.headers ?? {};
  }

  get spec(): ErrorSpec {
    return ERRORS[this.code];
  }

  /** Whole seconds for a Retry-After header: at least 1, rounded up. */
  get retryAfterSeconds(): number | undefined {
    return this.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(this.retryAfterMs / 1000));
  }
}

export function isMGError(err: unknown): err is MGError {
  return err instanceof MGError;
}

/** Any thrown value as an MGError; unknown failures become MG_INTERNAL without leaking internals. */
export function toMGError(err: unknown): MGError {
  if (err instanceof MGError) return err;
  return new MGError('MG_INTERNAL', undefined, { cause: err });
}
