/**
 * A raw gRPC client on node:http2: hand-built frames (5-byte prefix: compressed flag, big-endian
 * length), any headers, and the answer read as it is on the wire — HTTP status, grpc-status,
 * grpc-message (still percent-encoded) and x-modelguard-error, from the trailers or a
 * trailers-only answer. One session is reused, as clients do, so a call that broke the
 * connection shows up as a failure of the next one.
 */
import http2, { type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';

export interface WireAnswer {
  /** HTTP status of the response headers (0: none came). */
  readonly http: number;
  /** grpc-status (-1: none came before the timeout or the stream broke). */
  readonly grpc: number;
  /** grpc-message as sent (percent-encoded). */
  readonly rawMessage: string;
  readonly mg: string | undefined;
  /** Size of the largest header or trailer value received. */
  readonly largestValue: number;
}

/** One gRPC message frame (`compressed` sets the flag without compressing). */
export function frame(message: Buffer, opts: { compressed?: boolean; length?: number } = {}): Buffer {
  const head = Buffer.alloc(5);
  head[0] = opts.compressed ? 1 : 0;
  head.writeUInt32BE(opts.length ?? message.length, 1);
  return Buffer.concat([head, message]);
}

export class RawGrpc {
  private session: ClientHttp2Session;

  constructor(private readonly target: string) {
    this.session = this.open();
  }

  private open(): ClientHttp2Session {
    const s = http2.connect(`http://${this.target}`, { maxHeaderListPairs: 100_000 });
    s.on('error', () => undefined);
    return s;
  }

  /** Sends headers and body; resolves with the answer (never rejects). */
  call(path: string, headers: OutgoingHttpHeaders, body: Buffer, timeoutMs = 5000): Promise<WireAnswer> {
    if (this.session.destroyed || this.session.closed) this.session = this.open();
    return new Promise((resolve) => {
      let http = 0;
      let grpc = -1;
      let rawMessage = '';
      let mg: string | undefined;
      let largest = 0;
      const take = (h: Record<string, string | string[] | number | undefined>): void => {
        const text = (v: string | string[] | number | undefined): string => (Array.isArray(v) ? v.join(', ') : String(v));
        for (const v of Object.values(h)) largest = Math.max(largest, text(v).length);
        if (h[':status'] !== undefined) http = Number(h[':status']);
        if (h['grpc-status'] !== undefined) grpc = Number(h['grpc-status']);
        if (h['grpc-message'] !== undefined) rawMessage = text(h['grpc-message']);
        if (h['x-modelguard-error'] !== undefined) mg = text(h['x-modelguard-error']);
      };
      let req: http2.ClientHttp2Stream;
      try {
        req = this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers }, { endStream: false });
      } catch {
        resolve({ http, grpc, rawMessage, mg, largestValue: largest });
        return;
      }
      const timer = setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
      req.on('response', (h) => take(h));
      req.on('trailers', (h) => take(h));
      req.on('data', () => undefined);
      req.on('error', () => undefined);
      req.on('close', () => {
        clearTimeout(timer);
        resolve({ http, grpc, rawMessage, mg, largestValue: largest });
      });
      req.end(body);
    });
  }

  close(): void {
    this.session.close();
  }
}
