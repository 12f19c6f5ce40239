/**
 * One batch: queued calls of one model with compatible inputs that share one slot and one backend
 * call. It is formed when a slot is free (broker/batching/former.ts), then sent, and its answer is
 * cut back into one answer per member.
 *
 *   members  [w1: 2 rows][w2: 1 row][w3: 3 rows]        one slot, held from formation to the answer
 *        └──► joint call: inputs [6, …], the lead's path and headers ──► backend ──► split by rows
 *
 * Each member keeps its own client: one that leaves (or whose deadline passes) is answered at once,
 * and its rows still run, as a single call's would with cancelInFlight: finish.
 */
import { Cancel, CancelledError, type CancelSignal } from '../../core/cancel.ts';
import { MGError } from '../../core/errors.ts';
import { parseHeaderLength } from '../../core/kserve-frame.ts';
import type { BackendReply, InferenceCall } from '../../core/request.ts';
import type { BatchingSnapshot } from '../../core/snapshot.ts';
import type { SlotHold } from '../../dispatch/endpoint-set.ts';
import type { Work } from '../work.ts';
import { batchMember, BatchingError, joinMembers, splitAnswer, type BatchMember } from './rows.ts';

/**
 * The call read as a batch member (parsed once, cached on the work), or undefined when it cannot be
 * joined: not a KServe v2 infer call, no batch dimension, a body that is not a tensor request, or
 * one that was refused in a batch before (`solo`).
 */
export function memberOf(work: Work): BatchMember | undefined {
  if (work.solo) return undefined;
  if (work.member === undefined) {
    const call = work.call;
    work.member = null;
    if (call.api === 'kserve-v2' && call.op === 'infer' && call.body !== undefined && /\/infer(\?|$)/.test(call.path)) {
      const h = call.headers['inference-header-content-length'];
      const headerLength = h === undefined ? undefined : parseHeaderLength(h);
      if (h === undefined || headerLength !== undefined) {
        try {
          work.member = batchMember({ body: call.body, headerLength });
        } catch {
          // Whatever it is (BatchingError, or a body too deep to walk), it is sent alone, as it came.
        }
      }
    }
  }
  return work.member ?? undefined;
}

/** Calls that may share a backend call: same backend path (model, version) and compatible tensors. */
export function batchKey(work: Work, member: BatchMember): string {
  return `${work.call.path}\n${member.key}`;
}

function rowsOf(work: Work): number {
  return work.member?.rows ?? 1;
}

export class Batch {
  readonly members: Work[] = [];
  rows = 0;
  /** The maxDelay timer while the batch waits for more rows. */
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly key: string,
    readonly model: string,
    readonly config: BatchingSnapshot,
    /** The slot it was formed in, taken at formation and given back when the server is done. */
    readonly hold: SlotHold,
    /** Slots busy before this one was taken: the reserved-slot gate for members of lower priority. */
    readonly inflightBefore: number,
    /** performance.now() when the slot was taken (what batching adds to the lead's wait starts here). */
    readonly formedAt: number,
  ) {}

  get room(): number {
    return this.config.maxBatchSize - this.rows;
  }

  fits(work: Work): boolean {
    return rowsOf(work) <= this.room;
  }

  /** Adds a member taken out of its queue; from now on its client leaving or its deadline answers it at once. */
  add(work: Work): void {
    this.members.push(work);
    this.rows += rowsOf(work);
    if (work.call.signal.aborted) {
      work.reject(new CancelledError());
      return;
    }
    work.onAbort = () => work.reject(new CancelledError());
    work.call.signal.once('abort', work.onAbort);
    work.timer = setTimeout(() => work.reject(new MGError('MG_BACKEND_TIMEOUT', "the request's deadline passed while its batch was computing")), Math.max(0, work.callDeadline - performance.now()));
  }

  /** The earliest moment a member must have left (its queue deadline, or its call deadline). */
  earliestDeadline(): number {
    let t = Infinity;
    for (const w of this.members) t = Math.min(t, w.startBy, w.callDeadline);
    return t;
  }

  /** The one backend call: members' rows joined along dim 0 (a batch of one is sent exactly as it came). */
  call(): InferenceCall {
    const lead = this.members[0] as Work;
    if (this.members.length === 1) return lead.call;
    const joined = joinMembers(this.members.map((w) => w.member as BatchMember));
    const headers: Record<string, string> = { ...lead.call.headers };
    delete headers['content-length'];
    if (joined.headerLength === undefined) {
      delete headers['inference-header-content-length'];
      headers['content-type'] = 'application/json';
    } else {
      headers['inference-header-content-length'] = String(joined.headerLength);
      headers['content-type'] = 'application/octet-stream';
    }
    return {
      ...lead.call,
      body: joined.body,
      headers,
      signal: allLeft(this.members.map((w) => w.call.signal)),
      timeoutMs: undefined,
      costHint: undefined,
    };
  }

  /** The members' answers, in member order. Throws BatchingError when the answer cannot be cut by rows. */
  split(reply: BackendReply): BackendReply[] {
    if (this.members.length === 1) return [reply];
    if (!Buffer.isBuffer(reply.body)) throw new BatchingError('the batched answer was not read whole');
    const h = reply.headers['inference-header-content-length'];
    const headerLength = h === undefined ? undefined : parseHeaderLength(h);
    if (h !== undefined && headerLength === undefined) throw new BatchingError(`Inference-Header-Content-Length "${h}" is not a byte count`);
    const parts = splitAnswer({ body: reply.body, headerLength }, this.members.map((w) => w.member as BatchMember));
    return parts.map((p) => {
      const headers: Record<string, string> = { ...reply.headers };
      delete headers['content-length'];
      if (p.headerLength === undefined) delete headers['inference-header-content-length'];
      else headers['inference-header-content-length'] = String(p.headerLength);
      return { ...reply, headers, body: p.body };
    });
  }
}

/** A signal that aborts once every member's client has left (only then may a joint call be cancelled). */
function allLeft(signals: readonly CancelSignal[]): CancelSignal {
  const all = new Cancel();
  let staying = 0;
  for (const s of signals) {
    if (s.aborted) continue;
    staying++;
    s.once('abort', () => {
      if (--staying === 0) all.abort();
    });
  }
  if (staying === 0) all.abort();
  return all;
}
