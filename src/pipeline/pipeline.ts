/**
 * The governed path every adapter enters: identity → policy → admission (broker) → scheduler →
 * dispatch. Adapters decode their protocol, call these steps in order, and encode the result.
 * A new snapshot swaps identity and policy atomically; the broker keeps its queues across it.
 */
import { RequestEvents, type RequestRecord } from '../core/events.ts';
import type { BackendReply, Identity, InferenceCall } from '../core/request.ts';
import type { ModelSnapshot, Snapshot } from '../core/snapshot.ts';
import type { Broker } from '../broker/broker.ts';
import { type Credentials, IdentityResolver } from '../security/identity.ts';
import { Policy } from '../security/policy.ts';

export class Pipeline {
  private identity: IdentityResolver;
  private policy: Policy;
  /** Every finished request, published once by its adapter. */
  readonly events = new RequestEvents();

  constructor(readonly broker: Broker) {
    this.identity = new IdentityResolver(broker.current);
    this.policy = new Policy(broker.current);
  }

  get snapshot(): Snapshot {
    return this.broker.current;
  }

  apply(next: Snapshot): void {
    this.broker.apply(next);
    this.identity = new IdentityResolver(next);
    this.policy = new Policy(next);
  }

  authenticate(creds: Credentials, record: RequestRecord): Identity {
    const id = this.identity.resolve(creds);
    record.app = id.app;
    record.group = id.group;
    return id;
  }

  authorize(identity: Identity, model: string, record: RequestRecord): ModelSnapshot {
    const m = this.policy.authorize(identity, model);
    record.model = m.name;
    return m;
  }

  /** Scheduled work goes through the queues; metadata is answered directly. */
  run(call: InferenceCall, identity: Identity, record: RequestRecord): Promise<BackendReply> {
    if (call.op === 'metadata') return this.broker.metadata(call, record);
    this.policy.admitRate(identity);
    return this.broker.submit(call, identity, record);
  }

  visibleModels(identity: Identity): ModelSnapshot[] {
    return this.policy.visibleModels(identity);
  }

  maxBodyBytes(model: ModelSnapshot | undefined): number {
    return model?.maxBodyBytes ?? this.snapshot.gateway.maxBodyBytes;
  }
}
