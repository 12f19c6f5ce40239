/**
 * One request's life inside ModelGuard, whatever protocol brought it. An adapter decodes its wire
 * into who asks and what the call names, enters here once, and encodes what comes back; everything
 * between is owned here, in one order for every protocol:
 *
 *   adapter: decode ─▶ open ─▶ authenticate ─▶ name ─▶ authorize ─▶ check ─▶ body limit
 *            ─▶ validate ─▶ run (limits, broker, dispatch) ─▶ answer as asked (model names)
 *            ─▶ adapter: encode ─▶ end (published once)
 *
 * The record (what observers see), the trace, the cancellation signal and the mapping of failures
 * to DESIGN.md codes live here too, so a new protocol or a new policy step changes one place.
 */
import { Cancel, CancelledError } from '../core/cancel.ts';
import { isMGError, MGError, toMGError } from '../core/errors.ts';
import { newRecord, type RequestRecord } from '../core/events.ts';
import type { ApiKind, BackendReply, Identity, InferenceCall, Operation, Protocol } from '../core/request.ts';
import type { AppOperation, ModelSnapshot } from '../core/snapshot.ts';
import { backendTraceparent, startTrace } from '../core/trace-context.ts';
import { validateKserveInfer } from '../security/kserve-validate.ts';
import type { Credentials } from '../security/identity.ts';
import type { Pipeline } from './pipeline.ts';
import { answerAsAsked, answersNameOther } from './rename.ts';

/** Who asks: a client's own credentials, or (on the broker listener) a proxy asserting an app. */
export type Who = { readonly credentials: Credentials } | { readonly proxy: ProxyAssertion };

export interface ProxyAssertion {
  readonly authorization: string | undefined;
  readonly app: string | undefined;
  readonly group: string | undefined;
  readonly certificateNames: readonly string[] | undefined;
}

/** What a call names, decoded once its caller is known. */
export interface Named {
  readonly api: ApiKind;
  readonly op: Operation;
  readonly permission: AppOperation;
  readonly model: string;
  /** The body: already read (then checked against the model's limit), or read under that limit. */
  readonly body?: Buffer | ((limit: number) => Promise<Buffer>) | undefined;
  /** A KServe v2 infer body, checked before dispatch (`headerLength`: binary-data extension). */
  readonly kserveInfer?: { readonly headerLength: number | undefined } | undefined;
  readonly timeoutMs?: number | undefined;
  readonly costHint?: number | undefined;
  /** Checks that need the authorised model and caller (a reply topic, a pass-through's backend). */
  check?(model: ModelSnapshot, identity: Identity): void;
  /** The backend request for the authorised model and the body as read. */
  target(model: ModelSnapshot, body: Buffer | undefined): Target;
}

export interface Target {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
}

export interface Opening {
  readonly id: string;
  readonly protocol: Protocol;
  readonly source: string | undefined;
  readonly receivedAt?: number;
  /** Present where the protocol carries W3C trace context (the link passes the proxy's along unchanged). */
  readonly trace?: { readonly parent: string | undefined };
}

export interface Served {
  readonly reply: BackendReply;
  readonly model: ModelSnapshot;
  readonly identity: Identity;
}

export class Exchange {
  readonly record: RequestRecord;
  readonly signal = new Cancel();
  readonly started: number;
  private published = false;

  constructor(
    private readonly pipeline: Pipeline,
    opening: Opening,
  ) {
    this.started = opening.receivedAt ?? performance.now();
    this.record = newRecord(opening.id, opening.protocol, this.started);
    this.record.source = opening.source;
    const tracing = pipeline.snapshot.gateway.tracing;
    if (tracing && opening.trace) this.record.trace = startTrace(opening.trace.parent, tracing.sampleRate);
  }

  get id(): string {
    return this.record.id;
  }

  /** The client went away: what runs for it is cancelled, and the record says so. */
  hangUp(): void {
    this.signal.abort();
    if (this.record.outcome === 'OK') this.record.outcome = 'CANCELLED';
  }

  /** The caller, for answers that need no model (a listing of models). */
  authenticate(who: Who): Identity | Promise<Identity> {
    if ('proxy' in who) {
      const p = who.proxy;
      return this.pipeline.authenticateProxied(p.authorization, p.app, p.group, this.record, p.certificateNames);
    }
    return this.pipeline.authenticate(who.credentials, this.record);
  }

  /** The model a call names, for answers given here (a model card): 404 or 403 as for any call. */
  authorize(identity: Identity, model: string, permission: AppOperation): ModelSnapshot {
    return this.pipeline.authorize(identity, model, permission, this.record);
  }

  /**
   * The governed path: identity, what the call names, grants, the model's body limit, validation,
   * then limits and the broker. Resolves with the backend's answer (any status); rejects with an
   * MGError or a CancelledError, which `failure` turns into the answer to give.
   */
  async serve(who: Who, name: (identity: Identity) => Named | Promise<Named>): Promise<Served> {
    const id = this.authenticate(who);
    const identity = id instanceof Promise ? await id : id;
    const n = name(identity);
    const named = n instanceof Promise ? await n : n;
    this.record.api = named.api;
    const model = this.authorize(identity, named.model, named.permission);
    named.check?.(model, identity);
    const limit = this.pipeline.maxBodyBytes(model);
    let body: Buffer | undefined;
    if (typeof named.body === 'function') body = await named.body(limit);
    else if (named.body !== undefined) {
      body = named.body;
      if (body.length > limit) throw new MGError('MG_TOO_LARGE', `body of ${body.length} bytes is over model "${model.name}"'s limit of ${limit}`);
    }
    if (named.kserveInfer && body !== undefined) validateKserveInfer(body, named.kserveInfer.headerLength);
    const target = named.target(model, body);
    const headers = target.headers;
    headers['x-request-id'] = this.id;
    if (this.record.trace !== undefined) headers['traceparent'] = backendTraceparent(this.record.trace);
    const call: InferenceCall = {
      id: this.id,
      protocol: this.record.protocol,
      api: named.api,
      op: named.op,
      model: model.name,
      method: target.method,
      path: target.path,
      headers,
      body: target.body,
      timeoutMs: named.timeoutMs,
      signal: this.signal,
      receivedAt: this.started,
      costHint: named.costHint,
      permission: named.permission,
    };
    const reply = await this.pipeline.run(call, identity, this.record);
    this.record.servedBy = reply.servedBy;
    if (this.signal.aborted) {
      if (!Buffer.isBuffer(reply.body)) reply.body.destroy();
      throw new CancelledError();
    }
    // An alias is answered with the name the client asked for, in every protocol (once: a broker
    // behind the link has done it already).
    if (this.pipeline.broker.answersAsAsked || !answersNameOther(model, named.model)) return { reply, model, identity };
    return { reply: await answerAsAsked(reply, { api: named.api, op: named.op, method: target.method, model: named.model }, model), model, identity };
  }

  /**
   * What to answer for a failure: its MGError (unexpected errors are logged and become
   * MG_INTERNAL), or undefined when the client went away and nobody is left to answer.
   */
  failure(err: unknown): MGError | undefined {
    if (err instanceof CancelledError || this.signal.aborted) {
      this.record.outcome = 'CANCELLED';
      return undefined;
    }
    const mg = toMGError(err);
    if (!isMGError(err)) console.error(`modelguard: ${this.record.protocol} request ${this.id} failed:`, err);
    this.record.outcome = mg.code;
    return mg;
  }

  /** The answer is on its way (or nobody is left): the record is published, once. */
  end(status: number): void {
    if (this.published) return;
    this.published = true;
    this.record.status = status;
    // One clock reading for every observer of the record (metrics, the live view, logs, traces).
    this.record.endedAt = performance.now();
    this.pipeline.events.publish(this.record);
  }
}
