/**
 * Whose fault a failed call was. Only the server's own faults may count against an endpoint's or
 * a model's health (docs/health.md has the table and the reasons):
 *
 *   none      the server answered 2xx–4xx (a 4xx is the request's problem, and proves the server works)
 *   answer    a 5xx, or an answer that breaks the protocol: the model's, unless other models on the
 *             same endpoint fail alike (then the server's: endpoint-set.ts decides)
 *   refused   the connection could not be made: nothing listens there (the server's)
 *   reset     the connection broke before or during the answer (the server's)
 *   timeout   no answer within Backend.spec.timeout (the server's)
 *   request   the local client refused to send the request for what it carries (the request's)
 *   caller    the caller's deadline or cancel (the caller's)
 *   local     our own client closed under the call (a reload), or an error of ours (nobody's)
 */
import { CancelledError } from '../core/cancel.ts';
import { MGError } from '../core/errors.ts';
import { ConnectionFailure, RequestRejected } from './client.ts';

export type Fault = 'none' | 'answer' | 'refused' | 'reset' | 'timeout' | 'request' | 'caller' | 'local';

/** Faults that are the server's (count toward ejecting the endpoint, or the model on it). */
export function isServerFault(f: Fault): boolean {
  return f === 'answer' || f === 'refused' || f === 'reset' || f === 'timeout';
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_HTTP2_STREAM_ERROR', 'ERR_HTTP2_SESSION_ERROR']);

function codeOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The fault of a call that ended in `err` (the deadlines are the caller's to tell apart first). */
export function faultOf(err: unknown): Fault {
  if (err instanceof ConnectionFailure) return err.phase === 'connect' ? 'refused' : err.phase;
  if (err instanceof RequestRejected) return 'request';
  if (err instanceof CancelledError) return 'caller';
  if (err instanceof MGError) return err.code === 'MG_BACKEND_ERROR' ? 'answer' : err.code === 'MG_BACKEND_TIMEOUT' ? 'timeout' : 'local';
  const code = codeOf(err);
  return code !== undefined && RESET_CODES.has(code) ? 'reset' : 'local';
}

/** The fault an answered status carries. */
export function statusFault(status: number): Fault {
  return status >= 500 ? 'answer' : 'none';
}
