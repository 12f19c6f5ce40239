/**
 * Start-time fair queuing over strict priority levels.
 *
 * Each backlogged flow carries a virtual `pass`: the virtual time at which its next unit of work
 * starts. Serving a flow advances its pass by cost ÷ weight, so over any busy interval flows of
 * one level receive service in proportion to their weights, whatever the cost of their requests
 * (cost is accelerator milliseconds in compute fairness, 1 in request fairness). The heap orders
 * flows by (priority desc, pass asc, creation order): one O(log n) step per decision.
 *
 * A flow that goes idle and comes back starts at the level's current virtual time, never below it,
 * so idleness earns no credit to burst with later, and an idle flow's share goes to the others at
 * once (work conservation). Charges are made with an estimate at dispatch and corrected with the
 * measured cost at completion, so estimation errors do not accumulate.
 */
import { IndexedHeap, type HeapItem } from '../heap.ts';
import type { FairnessPolicy, Flow } from './interface.ts';

export interface VirtualTimeFlow extends Flow, HeapItem {
  pass: number;
  /** Tie-break among equal passes: creation order, so decisions are deterministic. */
  readonly seq: number;
}

export class VirtualTimePolicy<F extends VirtualTimeFlow> implements FairnessPolicy<F> {
  private readonly heap = new IndexedHeap<F>((a, b) =>
    a.priority !== b.priority ? a.priority > b.priority : a.pass !== b.pass ? a.pass < b.pass : a.seq < b.seq,
  );
  /** Virtual time per priority level: the start tag of the work most recently dispatched there. */
  private readonly levelTime = new Map<number, number>();

  activate(flow: F): void {
    if (this.heap.has(flow)) return;
    const vt = this.levelTime.get(flow.priority) ?? 0;
    if (flow.pass < vt) flow.pass = vt;
    this.heap.push(flow);
  }

  deactivate(flow: F): void {
    this.heap.remove(flow);
  }

  peek(): F | undefined {
    return this.heap.peek();
  }

  charge(flow: F, cost: number, stillBacklogged: boolean): void {
    const vt = this.levelTime.get(flow.priority) ?? 0;
    if (flow.pass > vt) this.levelTime.set(flow.priority, flow.pass);
    flow.pass += cost / flow.weight;
    if (stillBacklogged) this.heap.update(flow);
    else this.heap.remove(flow);
  }

  correct(flow: F, delta: number): void {
    flow.pass += delta / flow.weight;
    this.heap.update(flow);
  }

  reconfigure(flow: F): void {
    if (!this.heap.has(flow)) return;
    // A priority change moves the flow to another level: start it at that level's virtual time.
    const vt = this.levelTime.get(flow.priority) ?? 0;
    if (flow.pass < vt) flow.pass = vt;
    this.heap.update(flow);
  }
}
