/**
 * MQTT ingress: a PUBLISH on `<prefix>/infer/<model>` is decoded into the neutral InferenceCall,
 * run through the same pipeline as HTTP (identity, grants, limits, queues, deadlines, metrics,
 * access log, audit), and answered with exactly one reply on the caller's reply topic. A request
 * without any reply address cannot be answered: it is counted, logged and dropped.
 *
 *   device ──PUBLISH──▶ broker ──▶ transport ──▶ handle() ──▶ pipeline.run() ──▶ backend
 *   device ◀──reply──── broker ◀── transport ◀── encode ◀─────────┘
 */
import { readBounded } from '../../core/body.ts';
import { echo, MGError } from '../../core/errors.ts';
import type { MqttSnapshot } from '../../core/snapshot.ts';
import { Exchange, type Named } from '../../pipeline/exchange.ts';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import type { Credentials } from '../../security/identity.ts';
import { decodeRequest, parsePayload, replyAddress, type Payload } from './decode.ts';
import { errorReply, successReply } from './encode.ts';
import { EmbeddedBroker } from './embedded.ts';
import { ExternalBroker } from './external.ts';
import { modelOfTopic, replyRoot, topicOwner, type TopicOwner } from './topics.ts';
import type { MqttTransport, ReplyMessage, RequestMessage } from './transport.ts';

/** Bytes of an MQTT PUBLISH beyond its payload: fixed header, topic (at most 64 KiB), packet id. */
const PACKET_HEADROOM = 70 * 1024;
/** How long close() lets requests in flight finish and answer. */
const DRAIN_MS = 5000;
/** Largest backend error body read to explain a 4xx. */
const MAX_ERROR_BODY = 16 * 1024;

export interface MqttIngressStats {
  /** Requests answered (with a result or an error). */
  replied: number;
  /** Requests dropped because they named no usable reply topic. */
  dropped: number;
  /**
   * Requests not run and not answered: a retained replay (external broker), or a reply topic that
   * is a request topic, reserved, or another app's (the answer has nowhere it may go).
   */
  refused: number;
  /** Replies the broker did not take (connection lost). */
  replyFailures: number;
}

export interface MqttIngress {
  /** Where devices connect: the external broker, or the embedded broker's bound address. */
  readonly url: string;
  readonly embedded: boolean;
  readonly stats: Readonly<MqttIngressStats>;
  /** Connected to the external broker, or the embedded broker is listening. */
  readonly connected: boolean;
  close(): Promise<void>;
}

let counter = 0;
const ID_PREFIX = `m${Math.random().toString(36).slice(2, 7)}`;


/** A backend's non-2xx KServe answer as an error: its own message, the closest code. */
function backendRejection(status: number, body: Buffer): MGError {
  let message = body.toString('utf8').slice(0, 300);
  try {
    const doc = JSON.parse(body.toString('utf8')) as { error?: unknown };
    if (typeof doc.error === 'string') message = doc.error;
  } catch {
    // not JSON: keep the text
  }
  const text = `backend answered ${status}${message ? `: ${message}` : ''}`;
  if (status === 404) return new MGError('MG_MODEL_NOT_FOUND', text);
  if (status === 413) return new MGError('MG_TOO_LARGE', text);
  if (status >= 400 && status < 500) return new MGError('MG_BAD_REQUEST', text);
  return new MGError('MG_BACKEND_ERROR', text);
}

class Ingress implements MqttIngress {
  readonly stats: MqttIngressStats = { replied: 0, dropped: 0, refused: 0, replyFailures: 0 };
  private inflight = 0;
  private lastDropLog = 0;
  private lastRefusalLog = 0;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly cfg: MqttSnapshot,
    private readonly transport: MqttTransport,
    readonly embedded: boolean,
  ) {}

  get url(): string {
    return this.transport.url;
  }

  get connected(): boolean {
    return this.transport.connected;
  }

  start(): Promise<void> {
    // Requests still delivered while closing (before the unsubscribe took effect) are served: the
    // pipeline runs until close() has drained.
    return this.transport.start((msg) => {
      this.inflight++;
      this.handle(msg)
        .catch((err: unknown) => console.error('modelguard: MQTT request failed:', err))
        .finally(() => this.inflight--);
    });
  }

  private async handle(msg: RequestMessage): Promise<void> {
    const tp = msg.userProperties?.['traceparent'];
    const ex = new Exchange(this.pipeline, { id: `${ID_PREFIX}-${(counter++).toString(36)}`, protocol: 'mqtt', source: msg.source, trace: { parent: typeof tp === 'string' ? tp : undefined } });
    ex.record.api = 'kserve-v2';
    if (msg.retained) {
      this.refuse(ex, msg.topic, 'a retained message replayed by the broker is never run');
      return;
    }
    const payload = parsePayload(msg.payload);
    const to = replyAddress(msg, payload.doc);
    if (to === undefined) {
      this.drop(ex, msg.topic);
      return;
    }
    // Where the answer may go depends on who asks; the topics nobody may be answered on are
    // refused before anything runs, and nothing is published there.
    const dest = topicOwner(this.cfg.topicPrefix, to.topic);
    if (dest.kind === 'requests' || dest.kind === 'reserved') {
      this.refuse(ex, msg.topic, `reply topic ${echo(to.topic)} is ${dest.kind === 'requests' ? 'a request topic' : `reserved (replies under ${this.cfg.topicPrefix}/ go to ${this.cfg.topicPrefix}/<app>/replies/...)`}`);
      return;
    }
    let reply: ReplyMessage;
    let status = 200;
    try {
      const call = this.decode(msg, payload, dest);
      const { reply: answer } = await ex.serve({ credentials: call.creds }, () => call.named);
      const body = Buffer.isBuffer(answer.body) ? answer.body : await readBounded(answer.body, { limit: MAX_ERROR_BODY, over: 'truncate' });
      if (answer.status < 200 || answer.status >= 300) throw backendRejection(answer.status, body);
      reply = successReply(to, body, answer.servedBy, ex.id);
    } catch (err) {
      // MQTT has no way to take a request back: a failure here always has someone to answer.
      const mg = ex.failure(err) ?? new MGError('MG_INTERNAL', 'cancelled');
      status = mg.httpStatus;
      // An error goes to another app's reply topic never: it would let anyone write into it.
      const app = ex.record.app ?? msg.connectionApp;
      if (dest.kind === 'replies' && (app === undefined || app !== dest.app)) {
        this.refuse(ex, msg.topic, `reply topic ${echo(to.topic)} belongs to app ${echo(dest.app)}, not to the caller`, status);
        return;
      }
      reply = errorReply(to, mg, ex.id, ex.record.servedBy);
    }
    try {
      await this.transport.reply(reply);
      this.stats.replied++;
    } catch (err) {
      // The broker connection went away: the device will not hear back; say so in the record.
      this.stats.replyFailures++;
      if (ex.record.outcome === 'OK') ex.record.outcome = 'CANCELLED';
      process.stderr.write(`modelguard: MQTT reply to ${to.topic} for ${ex.id} not sent: ${(err as Error).message}\n`);
    }
    ex.end(status);
  }

  /** The call a PUBLISH names: the model in its topic, the KServe request in its payload. */
  private decode(msg: RequestMessage, payload: Payload, dest: TopicOwner): { creds: Credentials; named: Named } {
    const modelName = modelOfTopic(this.cfg.topicPrefix, msg.topic);
    if (modelName === undefined) throw new MGError('MG_BAD_REQUEST', `topic ${echo(msg.topic)} names no model (${this.cfg.topicPrefix}/infer/<model>)`);
    if (msg.payload.length > this.pipeline.snapshot.gateway.maxBodyBytes) {
      throw new MGError('MG_TOO_LARGE', `payload of ${msg.payload.length} bytes is over the limit of ${this.pipeline.snapshot.gateway.maxBodyBytes}`);
    }
    const d = decodeRequest(msg, payload.doc, payload.problem);
    const named: Named = {
      api: 'kserve-v2',
      op: 'infer',
      permission: 'infer',
      model: modelName,
      body: d.body,
      kserveInfer: { headerLength: undefined },
      timeoutMs: d.timeoutMs,
      check: (_model, identity) => this.checkReplyTopic(dest, identity.app),
      target: (model, body) => ({ method: 'POST', path: `/v2/models/${encodeURIComponent(model.backendModel)}/infer`, headers: { 'content-type': 'application/json' }, body }),
    };
    return { creds: d.creds, named };
  }

  /**
   * Answers go only where the caller's app alone can read them: its own `<prefix>/<app>/replies/...`
   * on either broker; on the embedded broker, whose ACL is ModelGuard's, nowhere else (a topic
   * outside the prefix is readable by any device). An external broker's ACL governs the topics
   * outside the prefix (docs/security.md). Under `auth: none` there is no app to keep answers from.
   */
  private checkReplyTopic(dest: TopicOwner, app: string | undefined): void {
    const root = replyRoot(this.cfg.topicPrefix, app ?? '<app>');
    if (dest.kind === 'replies' && dest.app !== app) {
      throw new MGError('MG_FORBIDDEN', `reply topics under ${this.cfg.topicPrefix}/${dest.app}/ belong to app ${echo(dest.app)}; answers to ${app === undefined ? 'anonymous callers' : `app ${echo(app)}`} go to ${root}/...`);
    }
    if (dest.kind === 'outside' && this.embedded && app !== undefined) {
      throw new MGError('MG_FORBIDDEN', `on the embedded broker answers go to ${root}/... (readable by the app's devices only), not to a topic any device can read`);
    }
  }

  /** Not run, not answered (there is nowhere an answer may go): counted, logged at most every 10 s. */
  private refuse(ex: Exchange, topic: string, why: string, status = 400): void {
    this.stats.refused++;
    if (ex.record.outcome === 'OK') ex.record.outcome = 'MG_BAD_REQUEST';
    const now = performance.now();
    if (now - this.lastRefusalLog > 10_000) {
      this.lastRefusalLog = now;
      process.stderr.write(`modelguard: MQTT request on ${echo(topic)} not run: ${why} (${this.stats.refused} so far)\n`);
    }
    ex.end(status === 200 ? 400 : status);
  }

  /** No reply topic at all: nobody to tell, so count it, log it (at most every 10 s) and move on. */
  private drop(ex: Exchange, topic: string): void {
    this.stats.dropped++;
    ex.record.outcome = 'MG_BAD_REQUEST';
    ex.record.model = undefined;
    const now = performance.now();
    if (now - this.lastDropLog > 10_000) {
      this.lastDropLog = now;
      process.stderr.write(`modelguard: MQTT request on ${topic} dropped: no responseTopic (MQTT 5) or "replyTo" (MQTT 3.1.1) to answer on (${this.stats.dropped} so far)\n`);
    }
    ex.end(400);
  }

  async close(): Promise<void> {
    await this.transport.stopIntake();
    const end = performance.now() + DRAIN_MS;
    while (this.inflight > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
    await this.transport.close();
  }
}

/**
 * Starts the MQTT ingress of a gateway: the embedded broker at `url`, or a client of the external
 * broker there. `url` overrides the configured one (tests use mqtt://127.0.0.1:0).
 */
export async function startMqttIngress(pipeline: Pipeline, cfg: MqttSnapshot, url = cfg.url): Promise<MqttIngress> {
  // A key or a JWT at CONNECT, checked as a request's would be (source rules included): the
  // device then reads its app's replies. Each request resolves the key again (revocation, expiry).
  const checkKey = async (key: string, source: string | undefined): Promise<{ app: string | undefined } | undefined> => {
    // An exchange never ended: a connection is not a request, nothing is published.
    const ex = new Exchange(pipeline, { id: 'mqtt-connect', protocol: 'mqtt', source });
    try {
      const id = await ex.authenticate({ credentials: { key, group: undefined } });
      return { app: id.app };
    } catch {
      return undefined;
    }
  };
  // Room for the topic (≤ 64 KiB) and fixed header over the largest body any model accepts.
  const snap = pipeline.snapshot;
  const maxBody = Math.max(snap.gateway.maxBodyBytes, ...Object.values(snap.models).map((m) => m.maxBodyBytes ?? 0));
  const transport: MqttTransport = cfg.embedded ? new EmbeddedBroker(cfg, url, checkKey, maxBody + PACKET_HEADROOM) : new ExternalBroker(cfg, url);
  const ingress = new Ingress(pipeline, cfg, transport, cfg.embedded);
  await ingress.start();
  return ingress;
}
