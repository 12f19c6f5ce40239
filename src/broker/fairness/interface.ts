/**
 * Fairness policy: given the backlogged flows (service groups with queued work on one dispatch
 * domain), which one is served next. It knows nothing about queues, slots or requests: the domain
 * tells it when a flow becomes backlogged or idle and what each dispatch cost.
 */
export interface Flow {
  readonly name: string;
  /** Strict: a higher priority level is always served before a lower one. */
  priority: number;
  /** Share among flows of the same priority. */
  weight: number;
}

export interface FairnessPolicy<F extends Flow> {
  /** The flow now has queued work. */
  activate(flow: F): void;
  /** The flow has no queued work any more. */
  deactivate(flow: F): void;
  /** The flow to serve next, or undefined when none is backlogged. Does not change state. */
  peek(): F | undefined;
  /** One unit of the flow's work was dispatched at `cost`; `stillBacklogged` says whether it has more. */
  charge(flow: F, cost: number, stillBacklogged: boolean): void;
  /** Corrects an earlier charge once the true cost is known (delta = actual − charged). */
  correct(flow: F, delta: number): void;
  /** The flow's weight or priority changed (configuration reload). */
  reconfigure(flow: F): void;
}
