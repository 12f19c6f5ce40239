/** Backend client contract: one per endpoint, reusing its connections. */
import type { Readable } from 'node:stream';
import type { CancelSignal } from '../core/cancel.ts';

export interface BackendRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
  /** Aborts the call (client gone, or the call's deadline). */
  readonly signal: CancelSignal;
}

export interface BackendResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Readable;
}

export interface BackendClient {
  request(req: BackendRequest): Promise<BackendResponse>;
  /** Readiness probe: true when the endpoint answers `path` with 2xx within `timeoutMs`. */
  probe(path: string, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Failures where the request never reached the model (refused, reset before an answer): safe to
 * send to another replica.
 */
export class ConnectionFailure extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'ConnectionFailure';
  }
}
