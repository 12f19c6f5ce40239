/** Reading a gRPC call's metadata: identity, deadline, request id, source, and what to forward. */
import type { Metadata } from '@grpc/grpc-js';
import { MGError } from '../../core/errors.ts';
import { GRPC_LABELS, parseCredentials } from '../../security/credentials.ts';
import type { Credentials } from '../../security/identity.ts';

/** Metadata that asserts identity or routing: each may appear once; never forwarded. */
const IDENTITY = ['authorization', 'x-api-key', 'x-service-group'] as const;

/** Never forwarded to a backend: identity, ModelGuard's own keys, transport-owned keys. */
function stripped(key: string): boolean {
  return (
    (IDENTITY as readonly string[]).includes(key) ||
    key.startsWith('x-modelguard-') ||
    key.startsWith('grpc-') ||
    key.startsWith(':') ||
    key === 'user-agent' ||
    key === 'content-type' ||
    key === 'te' ||
    key === 'host' ||
    key === 'connection' ||
    key === 'x-request-id'
  );
}

/** One text value of a key that must appear at most once. */
export function single(md: Metadata, key: string): string | undefined {
  const values = md.get(key);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new MGError('MG_BAD_REQUEST', `metadata ${key} given more than once`);
  const v = values[0];
  // Node's HTTP/2 layer joins a repeated header into one value with ", ".
  if (typeof v === 'string' && v.includes(',') && (IDENTITY as readonly string[]).includes(key)) {
    throw new MGError('MG_BAD_REQUEST', `metadata ${key} given more than once`);
  }
  return typeof v === 'string' ? v : undefined;
}

/** The same Credentials the HTTP adapter builds from headers. */
export function credentials(md: Metadata): Credentials {
  for (const k of IDENTITY) single(md, k); // refuses repetition before anything is looked up
  return parseCredentials({ authorization: single(md, 'authorization'), apiKey: single(md, 'x-api-key'), group: single(md, 'x-service-group') }, GRPC_LABELS);
}

/**
 * How much earlier than the client's own deadline ModelGuard gives up: enough for the answer (with
 * its x-modelguard-error trailer) to reach the client before the client's timer fires and hides it.
 */
export function deadlineMargin(ms: number): number {
  return Math.min(50, ms * 0.1);
}

/** Least time worth dispatching with: less than this after the margin cannot come back in time. */
export const MIN_DISPATCH_MS = 1;

/**
 * grpc-timeout as the call's timeoutMs: what is left now, less the margin (the broker counts it
 * from the call's arrival, so it expires a little early rather than late); undefined when the
 * client set none. A deadline
 * that has passed, or leaves less than MIN_DISPATCH_MS once the margin is taken (grpc-timeout 0,
 * 1n, 1u, 1m), is DEADLINE_EXCEEDED now: never rounded up to a token millisecond, never dispatched.
 */
export function timeoutFromDeadline(deadline: Date | number): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return undefined;
  const ms = at - Date.now();
  const left = ms - deadlineMargin(ms);
  if (!(left >= MIN_DISPATCH_MS)) throw deadlinePassed();
  return left;
}

/** Whether the call's deadline (grpc-timeout) has already passed. */
export function deadlineHasPassed(deadline: Date | number): boolean {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) && at <= Date.now();
}

export function deadlinePassed(): MGError {
  return new MGError('MG_QUEUE_TIMEOUT', 'the deadline (grpc-timeout) passed before the call could be dispatched');
}

/**
 * Largest metadata a call may carry, counted as HTTP/2 counts a header list (RFC 7541 §4.1: name
 * + value + 32 per entry). The same 16 KiB the HTTP listener allows for a header block (Node's
 * limit, answered 431 there); over it the call is RESOURCE_EXHAUSTED (MG_TOO_LARGE) at the edge
 * and never forwarded, so a model server never sees a header block it would refuse.
 */
export const MAX_METADATA_BYTES = 16 * 1024;

export function metadataSize(md: Metadata): number {
  let size = 0;
  for (const [key, values] of Object.entries(md.toJSON())) {
    for (const v of values) size += key.length + (typeof v === 'string' ? Buffer.byteLength(v) : Math.ceil((v.length * 4) / 3)) + 32;
  }
  return size;
}

export function checkMetadataSize(md: Metadata): void {
  const size = metadataSize(md);
  if (size > MAX_METADATA_BYTES) throw new MGError('MG_TOO_LARGE', `metadata of ${size} bytes is over the limit of ${MAX_METADATA_BYTES}`);
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;
let counter = 0;
const prefix = `g${Math.random().toString(36).slice(2, 7)}`;

export function requestId(md: Metadata): string {
  const given = md.get('x-request-id')[0];
  if (typeof given === 'string' && REQUEST_ID.test(given)) return given;
  return `${prefix}-${(counter++).toString(36)}`;
}

/** grpc-js peers read `1.2.3.4:5678` or `::1:5678`: the address without its port. */
export function sourceAddress(peer: string): string | undefined {
  const i = peer.lastIndexOf(':');
  if (i <= 0) return undefined;
  return peer.slice(0, i);
}

/**
 * Metadata to forward, as header-style text (binary `-bin` values base64, as on the wire).
 * Repeated text values are joined with ", " as HTTP does.
 */
export function forwardMetadata(md: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(md.getMap())) {
    if (stripped(key)) continue;
    const values = md.get(key).map((v) => (typeof v === 'string' ? v : v.toString('base64')));
    out[key] = key.endsWith('-bin') ? values.join(',') : values.join(', ');
  }
  return out;
}
