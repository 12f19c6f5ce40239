/**
 * The one bounded body reader: a request body at the ingress, a backend answer at dispatch, an
 * answer an adapter translates. Events rather than an async iterator: it runs for every request.
 */
import type { Readable } from 'node:stream';

export interface ReadLimit {
  /** Most bytes kept. */
  readonly limit: number;
  /**
   * Past `limit`: the error to reject with (the stream is destroyed, or for a request body left
   * to the caller to drain); `'truncate'` keeps the first `limit` bytes and reads on to the end.
   */
  readonly over: ((limit: number) => Error) | 'truncate';
  /** Rejects with this when the stream is aborted before its end (an HTTP request's client went away). */
  readonly aborted?: () => Error;
  /** Stop the stream when over (an answer nobody will read further), rather than only stop listening (a request whose connection stays usable). */
  readonly destroyWhenOver?: boolean;
}

export function readBounded(body: Readable | Buffer, opts: ReadLimit): Promise<Buffer> {
  if (Buffer.isBuffer(body)) {
    if (body.length <= opts.limit) return Promise.resolve(body);
    return opts.over === 'truncate' ? Promise.resolve(body.subarray(0, opts.limit)) : Promise.reject(opts.over(opts.limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let kept = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= opts.limit) {
        chunks.push(chunk);
        kept = size;
        return;
      }
      if (opts.over === 'truncate') {
        if (kept < opts.limit) {
          chunks.push(chunk.subarray(0, opts.limit - kept));
          kept = opts.limit;
        }
        return;
      }
      body.off('data', onData);
      if (opts.destroyWhenOver === true) body.destroy();
      reject(opts.over(opts.limit));
    };
    body.on('data', onData);
    body.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, kept)));
    body.once('error', reject);
    const aborted = opts.aborted;
    if (aborted !== undefined) body.once('aborted', () => reject(aborted()));
  });
}

/** Reads a stream to its end, keeping nothing (an answer whose client left, cancelInFlight: finish). */
export function drain(body: Readable | Buffer): Promise<void> {
  if (Buffer.isBuffer(body)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    body.on('data', () => undefined);
    body.once('end', resolve);
    body.once('error', reject);
  });
}
