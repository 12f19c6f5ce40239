/**
 * One backend call: deadlines, cancellation, the check that the answer is what the protocol
 * promises, and what the call tells about the endpoint. It has two ends:
 *
 *   answer ── what the caller gets: the reply, or an error (its deadline, its cancel, a failure)
 *   done   ── when the accelerator is really finished with it (the slot can be given back), and
 *             whose fault it was if it failed (attribution.ts)
 *
 * With `finish` (Backend.spec.cancelInFlight, the default) a caller that leaves, or whose own
 * deadline passes, gets its answer at once but the call runs on until the server has answered
 * (read and discarded): an accelerator cannot drop a running batch, so the slot stays taken. Only
 * the backend's own timeout (Backend.spec.timeout) cuts it, and that is the server's fault. With
 * `abort` the call is cancelled too (servers that truly cancel).
 */
import { drain, readBounded } from '../core/body.ts';
import { PassThrough, type Readable, finished } from 'node:stream';
import { Cancel, CancelledError } from '../core/cancel.ts';
import { MGError } from '../core/errors.ts';
import { checkKserveAnswer } from '../core/kserve-frame.ts';
import type { BackendReply, InferenceCall } from '../core/request.ts';
import { type Fault, faultOf, statusFault } from './attribution.ts';
import { type BackendResponse, ConnectionFailure, RequestRejected } from './client.ts';
import type { Endpoint } from './endpoint.ts';
import type { Whole } from '../core/http-call.ts';

/** Largest backend answer buffered for validation. */
const MAX_BUFFERED_REPLY = 64 * 1024 * 1024;

/** How a call ended for the accelerator. */
export interface Completion {
  /** Whose fault a failure was; `none` when the server answered (2xx–4xx). */
  readonly fault: Fault;
  /** The backend's HTTP status, when it answered. */
  readonly status: number | undefined;
  /** LLM tokens measured from `usage`, if any. */
  readonly units: number | undefined;
  /** The answer was delivered whole (a 2xx–4xx answer that ended). */
  readonly served: boolean;
}

export interface BackendCall {
  /** The caller's answer. Rejects with CancelledError, an MGError, ConnectionFailure or RequestRejected. */
  readonly answer: Promise<BackendReply>;
  /** Settles (never rejects) when the endpoint is done with the call. */
  readonly done: Promise<Completion>;
}

export interface CallLimits {
  /** performance.now() by which the caller wants its answer (its deadline). */
  readonly caller: number;
  /** performance.now() of the backend's own timeout (dispatch + Backend.spec.timeout). */
  readonly backend: number;
  /** Keep the call running when the caller leaves (cancelInFlight: finish). */
  readonly finish: boolean;
}

const answerTooLarge = (limit: number): MGError => new MGError('MG_BACKEND_ERROR', `backend answer larger than ${limit} bytes`);

function readAll(body: Readable | Buffer, limit: number): Promise<Buffer> {
  return readBounded(body, { limit, over: answerTooLarge, destroyWhenOver: true });
}

function isJson(headers: Readonly<Record<string, string>>): boolean {
  return (headers['content-type'] ?? '').includes('json');
}

/** A 2xx inference answer is checked before the caller gets it: KServe's always, OpenAI's when it is JSON (not SSE). */
function mustValidate(call: InferenceCall, status: number, headers: Readonly<Record<string, string>>): boolean {
  return status >= 200 && status < 300 && call.op === 'infer' && (call.api === 'kserve-v2' || (call.api === 'openai' && isJson(headers)));
}

/** What the client reads whole (straight into a Buffer as it arrives): the answers that are checked. */
function wholeFor(call: InferenceCall): Whole | undefined {
  if (call.op !== 'infer') return undefined;
  if (call.api === 'kserve-v2') return WHOLE_KSERVE;
  return call.api === 'openai' ? WHOLE_OPENAI : undefined;
}
const WHOLE_KSERVE: Whole = { limit: (status) => (status >= 200 && status < 300 ? MAX_BUFFERED_REPLY : undefined), tooLarge: answerTooLarge };
const WHOLE_OPENAI: Whole = { limit: (status, headers) => (status >= 200 && status < 300 && isJson(headers) ? MAX_BUFFERED_REPLY : undefined), tooLarge: answerTooLarge };

/** Tokens a completed OpenAI-style answer reports in `usage`, if any. */
function usageTokens(doc: unknown): number | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const usage = (doc as { usage?: { total_tokens?: unknown } }).usage;
  return typeof usage?.total_tokens === 'number' ? usage.total_tokens : undefined;
}

/** What the caller gets for a failed call: the request's fault is a 400; a broken answer a 502. */
function answerError(err: unknown, url: string, status: number | undefined): unknown {
  if (err instanceof RequestRejected) return new MGError('MG_BAD_REQUEST', err.message, { cause: err });
  if (err instanceof MGError || err instanceof ConnectionFailure || err instanceof CancelledError) return err;
  // The answer had begun (a status arrived) and then broke: never retried, the backend's failure.
  if (status !== undefined) return new MGError('MG_BACKEND_ERROR', `backend ${url} broke off its answer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  return err;
}

/**
 * `level`: the caller's priority level, for an endpoint with a connection pool per level (traffic
 * QoS). `at`: the caller's reading of performance.now() at the send, when it has one.
 */
export function callBackend(ep: Endpoint, call: InferenceCall, limits: CallLimits, level?: number, at?: number): BackendCall {
  let answerOk!: (reply: BackendReply) => void;
  let answerFail!: (err: unknown) => void;
  const answer = new Promise<BackendReply>((resolve, reject) => {
    answerOk = resolve;
    answerFail = reject;
  });
  let doneWith!: (c: Completion) => void;
  const done = new Promise<Completion>((resolve) => (doneWith = resolve));
  let answered = false;
  let ended = false;
  const give = (reply: BackendReply): void => {
    if (answered) return;
    answered = true;
    answerOk(reply);
  };
  const refuse = (err: unknown): void => {
    if (answered) return;
    answered = true;
    answerFail(err);
  };

  // A Cancel that has fired calls no listener added later: check first.
  if (call.signal.aborted) {
    refuse(new CancelledError());
    doneWith({ fault: 'caller', status: undefined, units: undefined, served: false });
    return { answer, done };
  }
  const ac = new Cancel();
  let backendTimedOut = false;
  let callerLeft = false;
  const now = at ?? performance.now();
  const backendTimer = setTimeout(() => {
    backendTimedOut = true;
    refuse(new MGError('MG_BACKEND_TIMEOUT', `backend ${ep.url} did not answer within its timeout`));
    ac.abort();
  }, Math.max(0, limits.backend - now));
  /** The caller is gone (cancel) or out of time (deadline): it is answered now; the call runs on with `finish`. */
  const callerGone = (why: 'cancel' | 'deadline'): void => {
    if (ended) return;
    callerLeft = true;
    refuse(why === 'cancel' ? new CancelledError() : new MGError('MG_BACKEND_TIMEOUT', `the request's deadline passed while backend ${ep.url} was computing it`));
    if (!limits.finish) ac.abort();
  };
  const callerTimer = limits.caller < limits.backend ? setTimeout(() => callerGone('deadline'), Math.max(0, limits.caller - now)) : undefined;
  const onClientAbort = (): void => callerGone('cancel');
  call.signal.once('abort', onClientAbort);
  const end = (c: Completion): void => {
    if (ended) return;
    ended = true;
    clearTimeout(backendTimer);
    if (callerTimer) clearTimeout(callerTimer);
    call.signal.removeListener('abort', onClientAbort);
    doneWith(c);
  };
  /** What a thrown error means, once the deadlines and the caller are taken into account. */
  const failed = (err: unknown, status?: number): void => {
    const fault: Fault = backendTimedOut ? 'timeout' : callerLeft && ac.aborted ? 'caller' : faultOf(err);
    refuse(callerLeft && ac.aborted ? new CancelledError() : answerError(err, ep.url, status));
    end({ fault, status, units: undefined, served: false });
  };

  /** An answer that is not what the protocol promises is the server's fault, like a 5xx. */
  const broken = (res: BackendResponse, err: unknown): void => {
    if (!Buffer.isBuffer(res.body) && !res.body.destroyed) res.body.destroy();
    if (err instanceof MGError && err.code === 'MG_BACKEND_ERROR') {
      refuse(err);
      end({ fault: 'answer', status: res.status, units: undefined, served: false });
      return;
    }
    failed(err, res.status);
  };
  /** A body in hand: checked when the protocol promises its shape, then given to the caller. */
  const deliver = (res: BackendResponse, buf: Buffer, checked: boolean): void => {
    const status = res.status;
    if (!checked) {
      give({ status, headers: res.headers, body: buf, endpoint: ep.url, servedBy: 'edge' });
      end({ fault: statusFault(status), status, units: undefined, served: true });
      return;
    }
    let units: number | undefined;
    if (call.api === 'openai') {
      // LLM answers are parsed in full: their `usage` corrects the cost of the call.
      let doc: unknown;
      try {
        doc = JSON.parse(buf.toString('utf8'));
      } catch {
        throw new MGError('MG_BACKEND_ERROR', `backend ${ep.url} answered with invalid JSON`);
      }
      units = usageTokens(doc);
    } else {
      const wrong = checkKserveAnswer(buf, res.headers['inference-header-content-length']);
      if (wrong !== undefined) throw new MGError('MG_BACKEND_ERROR', `backend ${ep.url} answered an invalid KServe body: ${wrong}`);
    }
    give({ status, headers: res.headers, body: buf, endpoint: ep.url, servedBy: 'edge' });
    end({ fault: 'none', status, units, served: true });
  };
  /** Every other answer: a 5xx, one nobody waits for, one still streaming. */
  const readOn = async (res: BackendResponse): Promise<void> => {
    const status = res.status;
    try {
      if (status >= 500) {
        const text = (await readBounded(res.body, { limit: 4096, over: 'truncate' }).catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 300);
        refuse(new MGError('MG_BACKEND_ERROR', `backend ${ep.url} answered ${status}${text ? `: ${text}` : ''}`));
        end({ fault: statusFault(status), status, units: undefined, served: false });
        return;
      }
      if (answered) {
        // Nobody waits for this answer any more (finish): read it to its end, then the slot is free.
        await drain(res.body);
        end({ fault: statusFault(status), status, units: undefined, served: status < 400 });
        return;
      }
      const backendBody = res.body;
      if (mustValidate(call, status, res.headers)) {
        // A body in hand within the limit was delivered by `received`; readBounded takes both forms.
        deliver(res, await readAll(backendBody, MAX_BUFFERED_REPLY), true);
        return;
      }
      if (Buffer.isBuffer(backendBody)) {
        deliver(res, backendBody, false);
        return;
      }
      let body: Readable = backendBody;
      if (limits.finish) {
        // The caller's stream may be dropped (client gone); the backend's is read to its end regardless.
        const out = new PassThrough();
        backendBody.pipe(out);
        backendBody.once('error', (err) => out.destroy(err));
        out.once('close', () => {
          if (backendBody.readableEnded) return;
          backendBody.unpipe(out);
          backendBody.resume();
        });
        body = out;
      }
      finished(backendBody, (err) => {
        if (err) failed(err, status);
        else end({ fault: statusFault(status), status, units: undefined, served: true });
      });
      give({ status, headers: res.headers, body, endpoint: ep.url, servedBy: 'edge' });
    } catch (err) {
      broken(res, err);
    }
  };
  /**
   * The common answer, read whole by the client (wholeFor: what is checked), is handled as it
   * arrives, with no further promise; the rest goes through readOn.
   */
  const received = (res: BackendResponse): void => {
    const body = res.body;
    if (res.status >= 500 || answered || !Buffer.isBuffer(body) || body.length > MAX_BUFFERED_REPLY) {
      void readOn(res);
      return;
    }
    try {
      deliver(res, body, mustValidate(call, res.status, res.headers));
    } catch (err) {
      broken(res, err);
    }
  };
  const notSent = (err: unknown): void => {
    if (err instanceof MGError && err.code === 'MG_BACKEND_ERROR' && !ac.aborted) {
      // Read whole by the client and over MAX_BUFFERED_REPLY: a broken answer, the server's fault.
      refuse(err);
      end({ fault: 'answer', status: undefined, units: undefined, served: false });
      return;
    }
    failed(err);
  };

  try {
    // Plain properties (undefined when absent): conditional spreads cost a generic copy per call.
    ep.client.request({ method: call.method, path: call.path, headers: call.headers, body: call.body, signal: ac, level, whole: wholeFor(call) }).then(received, notSent);
  } catch (err) {
    notSent(err);
  }
  return { answer, done };
}
