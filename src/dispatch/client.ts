/** Backend client contract: one per endpoint, reusing its connections. */
import type { Readable } from 'node:stream';
import type { CancelSignal } from '../core/cancel.ts';
import type { Whole } from '../core/http-call.ts';

export interface BackendRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
  /** Aborts the call (client gone, or the call's deadline). */
  readonly signal: CancelSignal;
  /** The caller's priority level, for a client with a pool per level (traffic QoS); others ignore it. */
  readonly level?: number | undefined;
  /** Answers to read whole rather than stream (an HTTP client honours it; others may answer with a stream). */
  readonly whole?: Whole | undefined;
}

export interface BackendResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** The whole answer, or a stream of it. */
  readonly body: Readable | Buffer;
}

export interface BackendClient {
  request(req: BackendRequest): Promise<BackendResponse>;
  /** Readiness probe: true when the endpoint answers `path` with 2xx within `timeoutMs`. */
  probe(path: string, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Where a connection failed: `connect` (refused, unreachable: the request never left), `reset` (the
 * connection broke before the answer began: the model may have seen it), `local` (our own client
 * was closed under it, by a reload: nobody's fault).
 */
export type ConnectionPhase = 'connect' | 'reset' | 'local';

/**
 * Failures where no answer arrived because the connection failed: the request may go to another
 * replica (always for `connect` and `local`, for `reset` when Backend.spec.retryOnReset allows).
 */
export class ConnectionFailure extends Error {
  readonly phase: ConnectionPhase;

  constructor(message: string, options?: { cause?: unknown; phase?: ConnectionPhase }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConnectionFailure';
    this.phase = options?.phase ?? 'connect';
  }
}

/**
 * The local client refused to send the request because of what it carries (an invalid header, a
 * metadata entry HTTP cannot carry): the request's fault, never the server's.
 */
export class RequestRejected extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'RequestRejected';
  }
}
