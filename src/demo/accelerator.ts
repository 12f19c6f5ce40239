/**
 * The simulated accelerator: N slots shared by every model, and one FIFO line in front of them,
 * like the internal queue of a GPU inference server. A request holds a slot for its whole service
 * (inference, or every token of a generation).
 *
 *   line (FIFO)              slots (N = 2)
 *   [t7][t6][t5] ──grant──▶  [■ resnet  t3] [■ yolo  t4]
 *        ▲ cancel() leaves the line       release() hands the slot to the head of the line
 *
 * Grants are synchronous when a slot is free, so a zero-service-time request costs no timer and
 * no promise. Releases hand the slot over in a loop (not recursively), so a long line of
 * zero-time requests cannot grow the stack.
 */

export interface ModelCounters {
  /** Requests that held a slot and completed. */
  served: number;
  /** Requests that left before completing (client gone while waiting or streaming, or server stopped). */
  cancelled: number;
  /** Requests whose model failed while holding a slot. */
  failed: number;
  /** Accelerator time (ms of slot occupancy) used by this model. */
  busyMs: number;
}

export interface AcceleratorStats {
  readonly slots: number;
  readonly inService: number;
  readonly waiting: number;
  /** Highest number of slots held at once since start (or the last reset). */
  readonly peakConcurrency: number;
  readonly models: Record<string, ModelCounters>;
}

export type Outcome = 'served' | 'cancelled' | 'failed';

/** A held slot; give it back with `Accelerator.release`. */
export interface Slot {
  readonly model: string;
  readonly startedAt: number;
  /** Reset generation; slots from before a reset are ignored when released. */
  readonly epoch: number;
}

/** A place in line. `cancel()` leaves the line; it does nothing once the slot was granted. */
export interface Ticket {
  cancel(): void;
}

interface Waiter extends Ticket {
  readonly model: string;
  readonly onGrant: (slot: Slot) => void;
  state: 'waiting' | 'granted' | 'cancelled';
}

export class Accelerator {
  readonly slots: number;
  private readonly line: (Waiter | undefined)[] = [];
  private head = 0;
  private waiting = 0;
  private inService = 0;
  private peak = 0;
  private epoch = 0;
  private pumping = false;
  private readonly holders = new Set<Slot>();
  private readonly counters = new Map<string, ModelCounters>();

  constructor(slots: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`slots must be an integer ≥ 1, got ${slots}`);
    this.slots = slots;
  }

  /** Calls `onGrant` once a slot is free: now (synchronously) if one is, else in FIFO order. */
  acquire(model: string, onGrant: (slot: Slot) => void): Ticket {
    const waiter: Waiter = {
      model,
      onGrant,
      state: 'waiting',
      cancel: () => {
        if (waiter.state !== 'waiting') return;
        waiter.state = 'cancelled';
        this.waiting--;
        this.count(model).cancelled++;
      },
    };
    if (this.inService < this.slots && this.waiting === 0) {
      this.grant(waiter);
    } else {
      this.line.push(waiter);
      this.waiting++;
    }
    return waiter;
  }

  /** Gives a slot back, counting the request under `outcome`. Releasing twice, or after a reset, does nothing. */
  release(slot: Slot, outcome: Outcome = 'served'): void {
    if (slot.epoch !== this.epoch || !this.holders.delete(slot)) return;
    const c = this.count(slot.model);
    c.busyMs += performance.now() - slot.startedAt;
    c[outcome]++;
    this.inService--;
    this.pump();
  }

  /** Forgets everything in flight (a replica that died): drops the line, frees the slots. */
  reset(): void {
    const now = performance.now();
    for (const slot of this.holders) {
      const c = this.count(slot.model);
      c.busyMs += now - slot.startedAt;
      c.cancelled++;
    }
    this.holders.clear();
    for (let i = this.head; i < this.line.length; i++) this.line[i]?.cancel();
    this.line.length = 0;
    this.head = 0;
    this.waiting = 0;
    this.inService = 0;
    this.epoch++;
  }

  /** Zeroes the counters and the peak (for benchmarks that measure one phase). */
  resetStats(): void {
    this.counters.clear();
    this.peak = this.inService;
  }

  /** Registers a model so that it shows in stats before its first request. */
  count(model: string): ModelCounters {
    let c = this.counters.get(model);
    if (!c) {
      c = { served: 0, cancelled: 0, failed: 0, busyMs: 0 };
      this.counters.set(model, c);
    }
    return c;
  }

  stats(): AcceleratorStats {
    const models: Record<string, ModelCounters> = {};
    for (const [name, c] of this.counters) models[name] = { ...c };
    return { slots: this.slots, inService: this.inService, waiting: this.waiting, peakConcurrency: this.peak, models };
  }

  private grant(waiter: Waiter): void {
    waiter.state = 'granted';
    this.inService++;
    if (this.inService > this.peak) this.peak = this.inService;
    const slot: Slot = { model: waiter.model, startedAt: performance.now(), epoch: this.epoch };
    this.holders.add(slot);
    try {
      waiter.onGrant(slot);
    } catch (err) {
      this.release(slot, 'failed');
      throw err;
    }
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.inService < this.slots && this.head < this.line.length) {
        const next = this.line[this.head];
        this.line[this.head++] = undefined;
        if (next?.state !== 'waiting') continue;
        this.waiting--;
        this.grant(next);
      }
      // Compact the array once its consumed prefix dominates, keeping dequeue O(1) amortized.
      if (this.head > 1024 && this.head * 2 > this.line.length) {
        this.line.splice(0, this.head);
        this.head = 0;
      }
    } finally {
      this.pumping = false;
    }
  }
}
