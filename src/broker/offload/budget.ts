/**
 * The offload budget: at most N requests sent to the cloud in any one-second window (a sliding
 * window over the times of the last N sends, so it holds exactly for every window, not just on
 * average) and at most M per UTC day. A request the budget refuses stays on the edge.
 *
 *   sends:  ring of the last N send times   [t-940][t-610][t-20]   (N = 3)
 *   allowed when the oldest of them is at least 1000 ms old
 */
const SECOND = 1000;
const DAY = 86_400_000;

export type BudgetVerdict = 'ok' | 'second' | 'day';

export class OffloadBudget {
  private ring: number[] = [];
  private next = 0;
  private day = -1;
  private dayCount = 0;

  constructor(
    private perSecond: number | undefined,
    private perDay: number | undefined,
    /** Wall clock for the day boundary (tests pass their own). */
    private readonly wall: () => number = Date.now,
  ) {}

  /** Applies reloaded limits; what was spent stays spent. */
  configure(perSecond: number | undefined, perDay: number | undefined): void {
    if (perSecond !== this.perSecond) {
      // Keep the newest sends that still fit the new window size.
      const times = [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
      this.ring = perSecond === undefined ? [] : times.slice(Math.max(0, times.length - perSecond));
      this.next = perSecond !== undefined && this.ring.length === perSecond ? 0 : this.ring.length;
    }
    this.perSecond = perSecond;
    this.perDay = perDay;
  }

  /** Whether one more send fits, without taking it. */
  check(now: number): BudgetVerdict {
    if (this.perDay !== undefined) {
      const d = Math.floor(this.wall() / DAY);
      if (d === this.day && this.dayCount >= this.perDay) return 'day';
    }
    if (this.perSecond !== undefined && this.ring.length >= this.perSecond) {
      const oldest = this.ring[this.next] as number;
      if (now - oldest < SECOND) return 'second';
    }
    return 'ok';
  }

  /** Takes one send if it fits. */
  take(now: number): BudgetVerdict {
    const verdict = this.check(now);
    if (verdict !== 'ok') return verdict;
    if (this.perDay !== undefined) {
      const d = Math.floor(this.wall() / DAY);
      if (d !== this.day) {
        this.day = d;
        this.dayCount = 0;
      }
      this.dayCount++;
    }
    if (this.perSecond !== undefined) {
      if (this.ring.length < this.perSecond) this.ring.push(now);
      else this.ring[this.next] = now;
      this.next = (this.next + 1) % this.perSecond;
    }
    return 'ok';
  }

  /** Sends left today (undefined: no daily cap). */
  leftToday(): number | undefined {
    if (this.perDay === undefined) return undefined;
    return Math.floor(this.wall() / DAY) === this.day ? Math.max(0, this.perDay - this.dayCount) : this.perDay;
  }
}
