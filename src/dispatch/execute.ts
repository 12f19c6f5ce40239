/**
 * One backend call: deadline, cancellation, and the check that the answer is what the protocol
 * promises. The result says when the accelerator is done (the body has ended), which is when the
 * caller frees the slot and measures the cost.
 */
import { type Readable, finished } from 'node:stream';
import { Cancel } from '../core/cancel.ts';
import { MGError } from '../core/errors.ts';
import { checkKserveAnswer } from '../core/kserve-frame.ts';
import type { BackendReply, InferenceCall } from '../core/request.ts';
import { CancelledError } from '../broker/work.ts';
import type { Endpoint } from './endpoint.ts';

/** Largest backend answer buffered for validation. */
const MAX_BUFFERED_REPLY = 64 * 1024 * 1024;

export interface CallResult {
  readonly reply: BackendReply;
  /** Settles when the body has been fully delivered (resolves with measured LLM tokens, if any). */
  readonly done: Promise<{ units: number | undefined }>;
}

/** Reads a whole body (events, not an async iterator: this is on every request's path). */
function readAll(body: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        body.destroy();
        reject(new MGError('MG_BACKEND_ERROR', `backend answer larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    body.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    body.once('error', reject);
  });
}

function isJson(headers: Record<string, string>): boolean {
  return (headers['content-type'] ?? '').includes('json');
}

/** Tokens a completed OpenAI-style answer reports in `usage`, if any. */
function usageTokens(doc: unknown): number | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const usage = (doc as { usage?: { total_tokens?: unknown } }).usage;
  return typeof usage?.total_tokens === 'number' ? usage.total_tokens : undefined;
}

export async function callBackend(ep: Endpoint, call: InferenceCall, deadline: number): Promise<CallResult> {
  // A Cancel that has fired calls no listener added later: check first.
  if (call.signal.aborted) throw new CancelledError();
  const ac = new Cancel();
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      ac.abort();
    },
    Math.max(0, deadline - performance.now()),
  );
  const onClientAbort = (): void => ac.abort();
  call.signal.once('abort', onClientAbort);
  const cleanup = (): void => {
    clearTimeout(timer);
    call.signal.removeListener('abort', onClientAbort);
  };
  const failure = (err: unknown): Error => {
    if (timedOut) return new MGError('MG_BACKEND_TIMEOUT', `backend ${ep.url} did not answer in time`);
    if (call.signal.aborted) return new CancelledError();
    return err instanceof Error ? err : new Error(String(err));
  };

  try {
    const res = await ep.client.request({
      method: call.method,
      path: call.path,
      headers: call.headers,
      body: call.body,
      signal: ac,
    });
    if (res.status >= 500) {
      const text = (await readAll(res.body, 4096).catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 300);
      throw new MGError('MG_BACKEND_ERROR', `backend ${ep.url} answered ${res.status}${text ? `: ${text}` : ''}`);
    }
    const ok = res.status >= 200 && res.status < 300;
    const mustValidate = ok && call.op === 'infer' && (call.api === 'kserve-v2' || (call.api === 'openai' && isJson(res.headers)));
    if (mustValidate) {
      const buf = await readAll(res.body, MAX_BUFFERED_REPLY);
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
      cleanup();
      return {
        reply: { status: res.status, headers: res.headers, body: buf, endpoint: ep.url, servedBy: 'edge' },
        done: Promise.resolve({ units }),
      };
    }
    const done = new Promise<{ units: number | undefined }>((resolve, reject) => {
      finished(res.body, (err) => {
        cleanup();
        if (err) reject(failure(err));
        else resolve({ units: undefined });
      });
    });
    return { reply: { status: res.status, headers: res.headers, body: res.body, endpoint: ep.url, servedBy: 'edge' }, done };
  } catch (err) {
    cleanup();
    throw failure(err);
  }
}
