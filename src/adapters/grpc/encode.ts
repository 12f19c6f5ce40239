/** Answers in gRPC's terms: MGErrors as status + trailers, backend HTTP statuses as gRPC codes. */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { MGError } from '../../core/errors.ts';

/** A status the adapter sends itself, with its x-modelguard-error trailer. */
export interface GrpcFailure {
  readonly code: number;
  readonly details: string;
  readonly metadata: Metadata;
}

/**
 * An MGError as a gRPC status: the registry's code, `x-modelguard-error` in the trailers and,
 * when the client may retry, `retry-after` (seconds) and `x-modelguard-retry-after-ms`.
 * `grpcOverride` replaces the code where gRPC has a more exact one (UNIMPLEMENTED for an unknown method).
 */
export function errorStatus(err: MGError, requestId: string, grpcOverride?: number): GrpcFailure {
  const md = new Metadata();
  md.set('x-modelguard-error', err.code);
  md.set('x-request-id', requestId);
  const retry = err.spec.retryable ? err.retryAfterSeconds : undefined;
  if (retry !== undefined && err.retryAfterMs !== undefined) {
    md.set('retry-after', String(retry));
    md.set('x-modelguard-retry-after-ms', String(Math.ceil(err.retryAfterMs)));
  }
  return { code: grpcOverride ?? err.spec.grpc, details: err.message, metadata: md };
}


export function asServiceError(f: GrpcFailure): Partial<ServiceError> {
  return { code: f.code, details: f.details, metadata: f.metadata };
}
