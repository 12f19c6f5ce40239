/**
 * What the pipeline hands admitted calls to: the local Broker (queues, scheduler, slots), or on a
 * proxy the RemoteBroker that forwards them to a broker over an authenticated link (src/link).
 * Metrics, the live view and the admin listener read the same shape, so every role observes alike.
 */
import type { RequestRecord } from '../core/events.ts';
import type { BackendReply, Identity, InferenceCall } from '../core/request.ts';
import type { Snapshot } from '../core/snapshot.ts';
import type { BrokerStatus } from './broker.ts';
import type { OffloadStatus } from './offload/offloader.ts';

export interface DataPlane {
  readonly current: Snapshot;
  /**
   * True when its answers already name the model as the call names it (`call.model`): a broker
   * behind the link has renamed an alias's answer in its own exchange. The proxy's exchange then
   * passes them as they came instead of renaming them a second time (a binary answer copied again,
   * a stream parsed twice). The local Broker answers as the backend did.
   */
  readonly answersAsAsked: boolean;
  start(): void;
  /** Scheduled work: answered exactly once, by the backend or with an MGError. */
  /** `now`: performance.now() at admission, when the caller has read the clock already. */
  submit(call: InferenceCall, identity: Identity, record: RequestRecord, now?: number): Promise<BackendReply>;
  /** Metadata and readiness calls: answered without queueing. */
  metadata(call: InferenceCall, record: RequestRecord): Promise<BackendReply>;
  /** Swaps configuration without dropping queued or in-flight work. */
  apply(next: Snapshot): void;
  ready(): boolean;
  status(): BrokerStatus;
  /** Per offload-enabled model: breaker, budget, predictions (empty where nothing offloads here). */
  offloadStatus(): OffloadStatus[];
  close(): Promise<void>;
}
