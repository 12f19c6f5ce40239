/** One admitted call on its way through the broker: queued, dispatched, then settled exactly once. */
import type { RequestRecord } from '../core/events.ts';
import type { BackendReply, InferenceCall } from '../core/request.ts';
import type { BatchMember } from './batching/rows.ts';
import type { QueueNode } from './queue.ts';
import type { VirtualTimeFlow } from './fairness/virtual-time.ts';
import type { LinkedQueue } from './queue.ts';
import type { RateMeter } from './rate.ts';

/** A service group's broker-side state, shared by its flows on every dispatch domain. */
export interface GroupState {
  readonly name: string;
  priority: number;
  weight: number;
  reservedSlots: number;
  maxLength: number;
  maxWaitMs: number;
  /** Queued (not yet dispatched) across all domains; bounded by maxLength. */
  queued: number;
  inflight: number;
  /** Dispatches per second, measured: the basis of Retry-After. */
  readonly drain: RateMeter;
  dispatched: number;
  /** Accelerator milliseconds consumed (measured at completion). */
  costMs: number;
  /** False once a reload removed the group: queued work is still served, new work is not admitted. */
  live: boolean;
}

/** A group's queue on one dispatch domain, as the fairness policy sees it. */
export interface DomainFlow extends VirtualTimeFlow {
  readonly group: GroupState;
  readonly queue: LinkedQueue<Work>;
}

export class Work {
  node: QueueNode<Work> | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Fairness charge made at dispatch, corrected at completion. */
  charged = 0;
  /** Cost units (1, or estimated tokens for LLM calls). */
  units = 1;
  attempts = 0;
  /**
   * Batching (models with `batching`): this call read as a batch member, parsed once; null when it
   * cannot be joined with others (it is sent alone, as it came); undefined until read.
   */
  member: BatchMember | null | undefined;
  /** Sent alone from now on: a batch it was in was refused (4xx), so its own request is tried on its own. */
  solo = false;
  /** The replica of the last attempt (a retry goes elsewhere when it can). */
  lastEndpoint: object | undefined;
  enqueuedAt = 0;
  dispatchedAt = 0;
  settled = false;
  onAbort: (() => void) | undefined;
  private resolveFn!: (reply: BackendReply) => void;
  private rejectFn!: (err: unknown) => void;
  readonly promise: Promise<BackendReply>;

  constructor(
    readonly call: InferenceCall,
    readonly flow: DomainFlow,
    readonly record: RequestRecord,
    /** performance.now() by which the work must have left the queue. */
    readonly queueDeadline: number,
    /** performance.now() by which the backend must have answered. */
    readonly callDeadline: number,
  ) {
    this.promise = new Promise<BackendReply>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  /**
   * By when the work must leave the queue: its group's wait for a first attempt; for a retry (its
   * call broke before any answer) the call's own deadline, since it waited its turn already.
   */
  get startBy(): number {
    return this.attempts > 0 ? this.callDeadline : this.queueDeadline;
  }

  get group(): GroupState {
    return this.flow.group;
  }

  resolve(reply: BackendReply): void {
    if (this.settled) return;
    this.settled = true;
    this.detach();
    this.resolveFn(reply);
  }

  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.detach();
    this.rejectFn(err);
  }

  /** Stops listening for the client's abort (the backend call has its own). */
  detach(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.onAbort) this.call.signal.removeListener('abort', this.onAbort);
    this.onAbort = undefined;
  }
}
