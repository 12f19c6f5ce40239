/**
 * Unary gRPC calls on one kept-alive node:http2 session per endpoint: the request message in one
 * length-prefixed frame, the answer's frame, initial metadata and trailers back. Leaner than a
 * grpc-js channel for ModelGuard's only pattern (one unary call per scheduled request), whose CPU
 * per call dominated a governed gRPC → gRPC call. Reconnects lazily when the session goes away.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { Metadata } from '@grpc/grpc-js';
import type { CancelSignal } from '../../core/cancel.ts';
import { Code } from '../../core/grpc-status.ts';
import { RequestRejected } from '../client.ts';

export interface UnaryResult {
  readonly code: number;
  readonly details: string;
  readonly value: Buffer | undefined;
  /** Initial metadata; undefined when the server answered trailers-only or not at all. */
  readonly initial: Metadata | undefined;
  readonly trailers: Metadata | undefined;
}

const MAX_MESSAGE = 64 * 1024 * 1024;
/** Transport headers that are not metadata. */
const NOT_METADATA = new Set(['content-type', 'grpc-status', 'grpc-message', 'grpc-encoding', 'grpc-accept-encoding', 'date', 'content-length']);

function metadataOf(headers: IncomingHttpHeaders): Metadata {
  const clean: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && !NOT_METADATA.has(k)) clean[k] = v;
  return Metadata.fromHttp2Headers(clean);
}

function text(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function details(headers: IncomingHttpHeaders): string {
  const m = text(headers['grpc-message']) ?? '';
  try {
    return decodeURIComponent(m);
  } catch {
    return m;
  }
}

/** A gRPC status from an HTTP status that carries none (a proxy or a non-gRPC server answered). */
function codeForHttp(status: number): number {
  if (status === 400) return Code.INTERNAL;
  if (status === 401) return Code.UNAUTHENTICATED;
  if (status === 403) return Code.PERMISSION_DENIED;
  if (status === 404) return Code.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return Code.UNAVAILABLE;
  return Code.UNKNOWN;
}

/** The message of a unary answer: exactly one uncompressed length-prefixed frame (or none). */
function message(data: Buffer): Buffer | string | undefined {
  if (data.length === 0) return undefined;
  if (data.length < 5) return 'truncated message frame';
  if (data[0] !== 0) return 'compressed message (ModelGuard asks for none)';
  const n = data.readUInt32BE(1);
  if (n > MAX_MESSAGE) return `message of ${n} bytes over the limit`;
  if (data.length !== 5 + n) return data.length < 5 + n ? 'truncated message' : 'more than one message in a unary answer';
  return data.subarray(5);
}

export class H2Channel {
  private session: ClientHttp2Session | undefined;
  private closed = false;

  /** `authority`: `http://host:port` (plaintext HTTP/2) or `https://host:port` (TLS). */
  constructor(private readonly authority: string) {}

  private connect(): ClientHttp2Session {
    const s0 = this.session;
    if (s0 && !s0.closed && !s0.destroyed) return s0;
    const s = http2.connect(this.authority);
    // Errors reach the streams that were open; the next call connects again.
    s.on('error', () => undefined);
    const forget = (): void => {
      if (this.session === s) this.session = undefined;
    };
    s.once('close', forget);
    s.once('goaway', forget);
    this.session = s;
    return s;
  }

  /** One unary call; resolves with its status whatever it is, rejects only when cancelled. */
  unary(path: string, body: Buffer, md: Metadata, signal: CancelSignal | undefined, deadline?: number): Promise<UnaryResult> {
    return new Promise((resolve, reject) => {
      if (this.closed) return resolve({ code: Code.UNAVAILABLE, details: 'client closed', value: undefined, initial: undefined, trailers: undefined });
      const headers: OutgoingHttpHeaders = { ...md.toHttp2Headers(), ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
      if (deadline !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.min(99_999_999, Math.ceil(deadline - Date.now())))}m`;
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connect().request(headers);
      } catch (err) {
        // node:http2 refuses headers it cannot send (connection-specific ones, bad characters): the request's fault.
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && /^ERR_(HTTP2_INVALID|INVALID_HTTP_TOKEN|INVALID_CHAR|HTTP2_HEADER)/.test(code)) {
          return reject(new RequestRejected(`the request cannot be sent as it is: ${(err as Error).message}`, { cause: err }));
        }
        return resolve({ code: Code.UNAVAILABLE, details: (err as Error).message, value: undefined, initial: undefined, trailers: undefined });
      }
      let initial: Metadata | undefined;
      let httpStatus = 0;
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeListener('abort', onAbort);
      };
      const finish = (r: UnaryResult): void => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve(r);
      };
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        cleanup();
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(new Error('cancelled'));
      };
      signal?.once('abort', onAbort);
      const timer =
        deadline === undefined
          ? undefined
          : setTimeout(() => {
              stream.close(http2.constants.NGHTTP2_CANCEL);
              finish({ code: Code.DEADLINE_EXCEEDED, details: 'deadline exceeded', value: undefined, initial, trailers: undefined });
            }, Math.max(0, deadline - Date.now()));
      const fromTrailers = (t: IncomingHttpHeaders, init: Metadata | undefined): void => {
        const code = Number(text(t['grpc-status']) ?? Code.UNKNOWN);
        const m = message(Buffer.concat(chunks, size));
        if (typeof m === 'string') return finish({ code: Code.INTERNAL, details: `backend answer: ${m}`, value: undefined, initial: init, trailers: metadataOf(t) });
        finish({ code: Number.isInteger(code) ? code : Code.UNKNOWN, details: details(t), value: m, initial: init, trailers: metadataOf(t) });
      };
      stream.on('response', (h) => {
        httpStatus = Number(h[':status'] ?? 0);
        // Trailers-only: the status is in the response headers and nothing else comes.
        if (h['grpc-status'] !== undefined) return fromTrailers(h, undefined);
        if (httpStatus !== 200) return finish({ code: codeForHttp(httpStatus), details: `backend answered HTTP ${httpStatus}`, value: undefined, initial: undefined, trailers: undefined });
        initial = metadataOf(h);
      });
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_MESSAGE + 5) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          finish({ code: Code.RESOURCE_EXHAUSTED, details: 'backend answer over 64 MiB', value: undefined, initial, trailers: undefined });
          return;
        }
        chunks.push(c);
      });
      stream.on('trailers', (t: IncomingHttpHeaders) => fromTrailers(t, initial));
      stream.on('error', (err: Error) => finish({ code: Code.UNAVAILABLE, details: err.message, value: undefined, initial, trailers: undefined }));
      stream.on('close', () => finish({ code: initial ? Code.INTERNAL : Code.UNAVAILABLE, details: 'stream closed without a status', value: undefined, initial, trailers: undefined }));
      const frame = Buffer.allocUnsafe(5);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      stream.write(frame);
      stream.end(body);
    });
  }

  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }
}
