/**
 * Forming batches on one dispatch domain. The domain's pump has picked the next call by the
 * scheduler's order and a free slot for it; when the call's model batches, the slot is held and
 * the batch is formed here:
 *
 *   lead (scheduler's next) ─► + compatible queued calls, in scheduler order, up to maxBatchSize rows
 *        │ full, or a member's deadline is within maxDelay ──────────────────► send now
 *        └ otherwise wait ≤ maxDelay in the held slot; compatible arrivals join ─► send
 *
 * "In scheduler order" is the fairness policy's own order restricted to compatible calls: among the
 * flows that have one, strict priority, then the lowest virtual pass (each member taken advances its
 * flow's pass by its charge, exactly as a dispatch does), then FIFO inside the flow. A member whose
 * group could not take this slot (reserved slots of higher priorities) does not ride in it.
 */
import type { BatchingSnapshot } from '../../core/snapshot.ts';
import type { SlotHold } from '../../dispatch/endpoint-set.ts';
import type { DomainFlow, Work } from '../work.ts';
import { Batch, batchKey, memberOf } from './batch.ts';

/**
 * Queued calls looked at per flow when a batch collects members: a compatible call deeper than this
 * in its group's queue waits for a later batch (bounds the work of one decision on long queues).
 */
export const SCAN_LIMIT = 256;

export interface BatchHost {
  readonly flows: ReadonlyMap<string, DomainFlow>;
  /** May work of `flow` hold a slot taken while `inflightBefore` slots were busy (reserved slots)? */
  mayRide(flow: DomainFlow, inflightBefore: number): boolean;
  /** Takes the call out of its queue and charges its group; false when it had expired (answered). */
  take(work: Work): boolean;
  /** Sends a formed batch in its held slot. */
  send(batch: Batch): void;
}

export class BatchFormer {
  /** Batches waiting for more rows, by batch key (at most one per key). */
  private readonly forming = new Map<string, Batch>();

  constructor(private readonly host: BatchHost) {}

  /** The batch key of a call of a batching model, or undefined when it is sent alone. */
  keyOf(work: Work): string | undefined {
    const m = memberOf(work);
    return m === undefined ? undefined : batchKey(work, m);
  }

  /** Joins a call to the waiting batch of its key when it fits and may ride there; true when it did. */
  offer(work: Work, key: string): boolean {
    const b = this.forming.get(key);
    if (!b || !b.fits(work) || !this.host.mayRide(work.flow, b.inflightBefore)) return false;
    if (this.host.take(work)) {
      b.add(work);
      if (!this.shouldWait(b)) this.flush(b);
    }
    return true;
  }

  /** Forms a batch led by `lead` (the scheduler's next call) in the slot `hold`. */
  form(lead: Work, key: string, config: BatchingSnapshot, hold: SlotHold, inflightBefore: number): void {
    if (!this.host.take(lead)) {
      hold.release();
      return;
    }
    const b = new Batch(key, lead.call.model, config, hold, inflightBefore, performance.now());
    b.add(lead);
    this.collect(b);
    if (this.forming.has(key) || !this.shouldWait(b)) {
      this.host.send(b);
      return;
    }
    this.forming.set(key, b);
    // Armed a millisecond early: Node's timers fire up to a millisecond late, and the hold is a promise of at most maxDelay.
    b.timer = setTimeout(() => this.flush(b), Math.max(0, config.maxDelayMs - 1));
  }

  /** Batches still waiting: their slots are given back and their members answered (the domain closes). */
  cancelAll(reject: (work: Work) => void): void {
    for (const b of this.forming.values()) {
      clearTimeout(b.timer);
      b.hold.release();
      for (const w of b.members) reject(w);
    }
    this.forming.clear();
  }

  /** Wait for more only while there is room and no member's deadline falls within maxDelay. */
  private shouldWait(b: Batch): boolean {
    return b.room > 0 && b.config.maxDelayMs > 0 && b.earliestDeadline() > performance.now() + b.config.maxDelayMs;
  }

  private flush(b: Batch): void {
    clearTimeout(b.timer);
    b.timer = undefined;
    if (this.forming.get(b.key) === b) this.forming.delete(b.key);
    this.host.send(b);
  }

  /** Adds queued compatible calls in scheduler order until the batch is full or none is left. */
  private collect(b: Batch): void {
    const now = performance.now();
    const lanes: { flow: DomainFlow; works: Work[] }[] = [];
    for (const flow of this.host.flows.values()) {
      if (flow.queue.length === 0 || !this.host.mayRide(flow, b.inflightBefore)) continue;
      const works: Work[] = [];
      let scanned = 0;
      let rows = 0;
      for (const w of flow.queue) {
        if (++scanned > SCAN_LIMIT || rows >= b.room) break;
        if (w.call.model !== b.model || w.startBy <= now || this.keyOf(w) !== b.key || !b.fits(w)) continue;
        works.push(w);
        rows += w.member?.rows ?? 1;
      }
      if (works.length > 0) lanes.push({ flow, works });
    }
    while (b.room > 0 && lanes.length > 0) {
      // The policy's order: priority desc, pass asc, creation order.
      let best = 0;
      for (let i = 1; i < lanes.length; i++) {
        const f = (lanes[i] as { flow: DomainFlow }).flow;
        const g = (lanes[best] as { flow: DomainFlow }).flow;
        if (f.priority !== g.priority ? f.priority > g.priority : f.pass !== g.pass ? f.pass < g.pass : f.seq < g.seq) best = i;
      }
      const lane = lanes[best] as { flow: DomainFlow; works: Work[] };
      const w = lane.works.shift() as Work;
      if (lane.works.length === 0) lanes.splice(best, 1);
      if (b.fits(w) && this.host.take(w)) b.add(w);
    }
  }
}
