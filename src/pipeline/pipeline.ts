/**
 * The governed path every adapter enters: source firewall → identity → policy (grants,
 * operations) → limits → admission (broker) → scheduler → dispatch. Adapters decode their protocol,
 * call these steps in order, and encode the result. A new snapshot swaps identity and policy
 * atomically; the broker keeps its queues and the limits keep their spent tokens across it.
 */
import { RequestEvents, type RequestRecord } from '../core/events.ts';
import type { BackendReply, Identity, InferenceCall } from '../core/request.ts';
import type { AppOperation, ModelSnapshot, Snapshot } from '../core/snapshot.ts';
import type { DataPlane } from '../broker/plane.ts';
import { type Credentials, IdentityResolver } from '../security/identity.ts';
import { Limits } from '../security/limits.ts';
import { Policy } from '../security/policy.ts';
import { ProxyAuthority } from '../security/proxies.ts';
import { JwtVerifier } from '../security/jwt.ts';
import { canonicalJson } from '../config/seal.ts';

export class Pipeline {
  private identity: IdentityResolver;
  private policy: Policy;
  private proxies: ProxyAuthority;
  private readonly limits: Limits;
  /** Every finished request, published once by its adapter. */
  readonly events = new RequestEvents();

  private jwt: JwtVerifier | undefined;

  constructor(readonly broker: DataPlane) {
    this.jwt = broker.current.gateway.jwt ? new JwtVerifier(broker.current.gateway.jwt) : undefined;
    this.identity = new IdentityResolver(broker.current, this.jwt);
    this.policy = new Policy(broker.current);
    this.proxies = new ProxyAuthority(broker.current);
    this.limits = new Limits(broker.current);
  }

  get snapshot(): Snapshot {
    return this.broker.current;
  }

  apply(next: Snapshot): void {
    // Built first: an unreadable JWKS file refuses the whole snapshot before anything changed.
    const jwtConfig = next.gateway.jwt;
    const jwt =
      jwtConfig === undefined ? undefined : this.jwt && canonicalJson(this.jwt.config) === canonicalJson(jwtConfig) ? this.jwt : new JwtVerifier(jwtConfig);
    this.broker.apply(next);
    this.jwt = jwt;
    this.identity = new IdentityResolver(next, jwt);
    this.policy = new Policy(next);
    this.proxies = new ProxyAuthority(next);
    this.limits.apply(next);
  }

  /** Box-wide source rules and identity. */
  authenticate(creds: Credentials, record: RequestRecord): Identity | Promise<Identity> {
    this.policy.checkSource(record.source);
    const id = this.identity.resolve(creds);
    if (id instanceof Promise) return id.then((i) => stamp(i, record));
    return stamp(id, record);
  }

  /**
   * On the broker listener: the calling proxy's credential (token and/or client certificate names),
   * then the app it asserts. The client's
   * address the proxy reports (record.source) meets the same source rules as a direct client.
   */
  authenticateProxied(
    proxyAuthorization: string | undefined,
    app: string | undefined,
    group: string | undefined,
    record: RequestRecord,
    certificateNames?: readonly string[],
  ): Identity {
    const proxy = this.proxies.authenticate(proxyAuthorization, certificateNames);
    this.policy.checkSource(record.source);
    const id = this.proxies.assert(proxy, app, group);
    record.app = id.app;
    record.group = id.group;
    return id;
  }

  /** The proxy presenting this credential (MG_UNAUTHENTICATED otherwise); its name. */
  proxyName(proxyAuthorization: string | undefined, certificateNames?: readonly string[]): string {
    return this.proxies.authenticate(proxyAuthorization, certificateNames).name;
  }

  authorize(identity: Identity, model: string, operation: AppOperation, record: RequestRecord): ModelSnapshot {
    const m = this.policy.authorize(identity, model, operation, record.source);
    record.model = m.name;
    return m;
  }

  /**
   * Counts the call against the app's limits, then schedules it (metadata is answered directly).
   * The app's in-flight count drops when the answer has been delivered or has failed.
   */
  async run(call: InferenceCall, identity: Identity, record: RequestRecord): Promise<BackendReply> {
    const app = identity.app;
    // One clock reading for admission: the app's buckets, the deadline check, the queue and the dispatch.
    const now = performance.now();
    if (app !== undefined) this.limits.admit(app, call.model, now);
    let released = false;
    const release = (): void => {
      if (released || app === undefined) return;
      released = true;
      this.limits.release(app);
    };
    try {
      const reply = call.op === 'metadata' ? await this.broker.metadata(call, record) : await this.broker.submit(call, identity, record, now);
      if (Buffer.isBuffer(reply.body) || reply.body.destroyed) release();
      else reply.body.once('close', release);
      return reply;
    } catch (err) {
      release();
      throw err;
    }
  }

  /** True when the data path can serve (an endpoint is healthy). */
  ready(): boolean {
    return this.broker.ready();
  }

  inflight(app: string): number {
    return this.limits.inflight(app);
  }

  visibleModels(identity: Identity): ModelSnapshot[] {
    return this.policy.visibleModels(identity);
  }

  maxBodyBytes(model: ModelSnapshot | undefined): number {
    return model?.maxBodyBytes ?? this.snapshot.gateway.maxBodyBytes;
  }
}

function stamp(id: Identity, record: RequestRecord): Identity {
  record.app = id.app;
  record.group = id.group;
  return id;
}
