/**
 * One HTTP exchange on an undici dispatcher, through its handler interface rather than its
 * `request` API. `request` builds, for every call, an async resource, a stream for the answer and
 * a promise per read; ModelGuard reads most answers whole (a KServe or OpenAI JSON answer it checks
 * before the caller gets it), so this reads those straight into a Buffer as undici parses them,
 * and gives a stream only to answers the caller wants as one (server-sent events, large bodies).
 * Measured in one process against a loopback server, 32 calls at a time: 17–18 µs of CPU per
 * call against 21 µs through `request` and a read of its stream.
 *
 * What it keeps from `request`: a signal that aborts the call before or after the answer began,
 * 1xx answers skipped, backpressure on a streamed answer (undici pauses the socket until the
 * stream is read), and a stream destroyed by its reader aborts the call.
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Dispatcher } from './undici.ts';
import type { CancelSignal } from './cancel.ts';

const require = createRequire(import.meta.url);
const { parseHeaders } = require('undici/lib/core/util.js') as { parseHeaders: (raw: Buffer[]) => Record<string, string | string[]> };

export interface CallRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | null;
  /** Aborts the call: before the answer began it fails with the signal's reason; after, the stream is destroyed with it. */
  readonly signal?: CancelSignal;
}

export interface CallAnswer {
  readonly status: number;
  /** Lower-case names; a header sent more than once is joined with ', '. */
  readonly headers: Record<string, string>;
  /** The whole answer when `whole` asked for it, otherwise a stream of it. */
  readonly body: Buffer | Readable;
}

/**
 * Which answers to read whole: given the status and headers, the most bytes to keep (past them
 * the call is aborted and fails with `tooLarge`), or undefined for a stream.
 */
export interface Whole {
  readonly limit: (status: number, headers: Readonly<Record<string, string>>) => number | undefined;
  readonly tooLarge: (limit: number) => Error;
}

const STREAM: Whole = { limit: () => undefined, tooLarge: () => new Error('unreachable') };

/** undici's header list ([name, value, ...] Buffers) as one string per name. */
function headerRecord(raw: Buffer[]): Record<string, string> {
  const parsed = parseHeaders(raw);
  for (const k in parsed) {
    const v = parsed[k];
    if (Array.isArray(v)) parsed[k] = v.join(', ');
  }
  return parsed as Record<string, string>;
}

/** A streamed answer: undici pauses the socket while it is unread; destroying it aborts the call. */
class AnswerStream extends Readable {
  resumeCall: (() => void) | undefined;
  abortCall: ((reason: Error) => void) | undefined;
  complete = false;

  override _read(): void {
    const resume = this.resumeCall;
    if (resume !== undefined) {
      this.resumeCall = undefined;
      resume();
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.complete) this.abortCall?.(err ?? new Error('the answer was dropped before its end'));
    cb(err);
  }
}

/** undici's legacy handler interface (onConnect … onComplete): what its client calls directly. */
class CallHandler {
  private abortCall: ((reason: Error) => void) | undefined;
  private resume: (() => void) | undefined;
  private status = 0;
  private headers: Record<string, string> = {};
  /** The answer read whole so far; undefined once it went over its limit. */
  private chunks: Buffer[] | undefined;
  private size = 0;
  private limit = 0;
  private stream: AnswerStream | undefined;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    private readonly signal: CancelSignal | undefined,
    private readonly whole: Whole,
    private readonly ok: (answer: CallAnswer) => void,
    private readonly fail: (err: unknown) => void,
    private readonly translate: ((err: unknown) => unknown) | undefined,
  ) {
    if (signal !== undefined) {
      this.onAbort = () => {
        const reason = reasonOf(signal);
        if (this.stream !== undefined) this.stream.destroy(reason);
        else this.abortCall?.(reason);
      };
      signal.once('abort', this.onAbort);
    }
  }

  onConnect(abort: (reason: Error) => void): void {
    this.abortCall = abort;
    if (this.signal?.aborted === true) abort(reasonOf(this.signal));
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true;
    this.status = status;
    const headers = headerRecord(raw);
    const limit = this.whole.limit(status, headers);
    if (limit !== undefined) {
      this.chunks = [];
      this.limit = limit;
      this.headers = headers;
      return true;
    }
    const stream = new AnswerStream();
    stream.abortCall = this.abortCall;
    stream.once('close', () => this.forget());
    this.stream = stream;
    this.resume = resume;
    this.ok({ status, headers, body: stream });
    return true;
  }

  onData(chunk: Buffer): boolean {
    const stream = this.stream;
    if (stream !== undefined) {
      if (stream.push(chunk)) return true;
      stream.resumeCall = this.resume;
      return false;
    }
    const chunks = this.chunks;
    if (chunks === undefined) return false;
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.chunks = undefined;
      this.abortCall?.(this.whole.tooLarge(this.limit));
      return false;
    }
    chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    const stream = this.stream;
    if (stream !== undefined) {
      stream.complete = true;
      stream.push(null);
      return;
    }
    const chunks = this.chunks;
    if (chunks === undefined) return;
    this.forget();
    this.ok({ status: this.status, headers: this.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size) });
  }

  onError(err: Error): void {
    const stream = this.stream;
    if (stream !== undefined) {
      stream.complete = true;
      if (!stream.destroyed) stream.destroy(err);
      return;
    }
    this.forget();
    this.fail(this.translate === undefined ? err : this.translate(err));
  }

  /** The call is over (or its stream is): the signal has nothing left to abort. */
  private forget(): void {
    if (this.onAbort !== undefined) this.signal?.removeListener('abort', this.onAbort);
  }
}

function reasonOf(signal: CancelSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the call was cancelled');
}

/**
 * Sends `req` through `dispatcher`. Resolves once the answer's headers arrived (a stream) or once
 * it ended (whole); rejects with undici's error (its `code` says where it failed), the signal's
 * reason, or `whole.tooLarge` — each passed through `translate` first when given (a caller's own
 * error types, without a promise layer of its own).
 */
export function httpCall(dispatcher: Dispatcher, req: CallRequest, whole: Whole = STREAM, translate?: (err: unknown) => unknown): Promise<CallAnswer> {
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted === true) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a caller's own error type
      reject(translate === undefined ? reasonOf(req.signal) : translate(reasonOf(req.signal)));
      return;
    }
    const handler = new CallHandler(req.signal, whole, resolve, reject, translate);
    try {
      dispatcher.dispatch({ method: req.method, path: req.path, headers: req.headers, body: req.body }, handler);
    } catch (err) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what dispatch threw, translated
      reject(translate === undefined ? err : translate(err));
    }
  });
}
