/**
 * The protocol-neutral request an adapter hands to the pipeline, and the reply it gets back.
 * Adapters decode their protocol into an InferenceCall and encode the BackendReply (or an MGError)
 * back; nothing downstream of the adapter knows which protocol a call came in on.
 */
import type { Readable } from 'node:stream';
import type { CancelSignal } from './cancel.ts';
import type { AppOperation } from './snapshot.ts';

export type Protocol = 'http' | 'grpc' | 'mqtt';

/** Which API family the call belongs to; decides how it is forwarded to a backend. */
export type ApiKind = 'kserve-v2' | 'openai' | 'passthrough';

/**
 * `infer` is accelerator work and is scheduled; `metadata` (model metadata, readiness, model lists)
 * is answered by a healthy endpoint without queueing.
 */
export type Operation = 'infer' | 'metadata';

export interface Identity {
  /** App name, or undefined for unauthenticated traffic under `auth: none`. */
  readonly app: string | undefined;
  readonly group: string;
}

export interface InferenceCall {
  readonly id: string;
  readonly protocol: Protocol;
  readonly api: ApiKind;
  readonly op: Operation;
  /** ModelGuard model name (resolved against the snapshot). */
  readonly model: string;
  readonly method: string;
  /** Path to send to the backend, model names already rewritten, query string included. */
  readonly path: string;
  /** Headers to forward (hop-by-hop and identity headers already removed). */
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
  /** Client-requested timeout, ms (X-Request-Timeout, grpc-timeout, timeoutMs). */
  readonly timeoutMs: number | undefined;
  /** Aborts when the client goes away. */
  readonly signal: CancelSignal;
  /** performance.now() when the adapter received the call. */
  readonly receivedAt: number;
  /** Predicted accelerator cost hint in abstract units (LLM tokens); undefined for fixed-cost calls. */
  readonly costHint: number | undefined;
  /** What the app was authorized for when it is not `op` itself (backend admin paths: `admin`). */
  readonly permission?: AppOperation;
}

export interface BackendReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  /**
   * The backend's body: a Buffer when ModelGuard has already read it (validated answers), else a
   * stream passed through as it arrives; the slot is released when it ends or fails.
   */
  readonly body: Readable | Buffer;
  /** Which endpoint answered. */
  readonly endpoint: string;
  readonly servedBy: 'edge' | 'cloud';
}
