/**
 * MQTT ingress: a PUBLISH on `<prefix>/infer/<model>` is decoded into the neutral InferenceCall,
 * run through the same pipeline as HTTP (identity, grants, limits, queues, deadlines, metrics,
 * access log, audit), and answered with exactly one reply on the caller's reply topic. A request
 * without any reply address cannot be answered: it is counted, logged and dropped.
 *
 *   device ──PUBLISH──▶ broker ──▶ transport ──▶ handle() ──▶ pipeline.run() ──▶ backend
 *   device ◀──reply──── broker ◀── transport ◀── encode ◀─────────┘
 */
import type { Readable } from 'node:stream';
import { Cancel } from '../../core/cancel.ts';
import { echo, isMGError, MGError, toMGError } from '../../core/errors.ts';
import { newRecord, type RequestRecord } from '../../core/events.ts';
import type { InferenceCall } from '../../core/request.ts';
import type { MqttSnapshot } from '../../core/snapshot.ts';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import { validateKserveInfer } from '../../security/kserve-validate.ts';
import { backendTraceparent, startTrace } from '../../observability/trace-context.ts';
import { answersNameOther } from '../http/rename.ts';
import { decodeRequest, parsePayload, replyAddress, type Payload, type ReplyAddress } from './decode.ts';
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

function readAll(body: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    body.once('end', () => resolve(Buffer.concat(chunks)));
    body.once('error', reject);
  });
}

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
    const started = performance.now();
    const id = `${ID_PREFIX}-${(counter++).toString(36)}`;
    const record = newRecord(id, 'mqtt', started);
    record.api = 'kserve-v2';
    record.source = msg.source;
    if (msg.retained) {
      this.refuse(record, msg.topic, 'a retained message replayed by the broker is never run');
      return;
    }
    const payload = parsePayload(msg.payload);
    const to = replyAddress(msg, payload.doc);
    if (to === undefined) {
      this.drop(record, msg.topic);
      return;
    }
    // Where the answer may go depends on who asks; the topics nobody may be answered on are
    // refused before anything runs, and nothing is published there.
    const dest = topicOwner(this.cfg.topicPrefix, to.topic);
    if (dest.kind === 'requests' || dest.kind === 'reserved') {
      this.refuse(record, msg.topic, `reply topic ${echo(to.topic)} is ${dest.kind === 'requests' ? 'a request topic' : `reserved (replies under ${this.cfg.topicPrefix}/ go to ${this.cfg.topicPrefix}/<app>/replies/...)`}`);
      return;
    }
    const who: { app: string | undefined } = { app: msg.connectionApp };
    let reply: ReplyMessage;
    try {
      reply = await this.serve(msg, payload, to, dest, who, record, id, started);
      record.status = 200;
    } catch (err) {
      const mg = toMGError(err);
      if (!isMGError(err)) console.error(`modelguard: MQTT request ${id} failed:`, err);
      record.outcome = mg.code;
      record.status = mg.httpStatus;
      // An error goes to another app's reply topic never: it would let anyone write into it.
      if (dest.kind === 'replies' && (who.app === undefined || who.app !== dest.app)) {
        this.refuse(record, msg.topic, `reply topic ${echo(to.topic)} belongs to app ${echo(dest.app)}, not to the caller`);
        return;
      }
      reply = errorReply(to, mg, id, record.servedBy);
    }
    try {
      await this.transport.reply(reply);
      this.stats.replied++;
    } catch (err) {
      // The broker connection went away: the device will not hear back; say so in the record.
      this.stats.replyFailures++;
      if (record.outcome === 'OK') record.outcome = 'CANCELLED';
      process.stderr.write(`modelguard: MQTT reply to ${to.topic} for ${id} not sent: ${(err as Error).message}\n`);
    }
    this.pipeline.events.publish(record);
  }

  private async serve(msg: RequestMessage, payload: Payload, to: ReplyAddress, dest: TopicOwner, who: { app: string | undefined }, record: RequestRecord, id: string, started: number): Promise<ReplyMessage> {
    const tracing = this.pipeline.snapshot.gateway.tracing;
    if (tracing) {
      const tp = msg.userProperties?.['traceparent'];
      record.trace = startTrace(typeof tp === 'string' ? tp : undefined, tracing.sampleRate);
    }
    const modelName = modelOfTopic(this.cfg.topicPrefix, msg.topic);
    if (modelName === undefined) throw new MGError('MG_BAD_REQUEST', `topic ${echo(msg.topic)} names no model (${this.cfg.topicPrefix}/infer/<model>)`);
    if (msg.payload.length > this.pipeline.snapshot.gateway.maxBodyBytes) {
      throw new MGError('MG_TOO_LARGE', `payload of ${msg.payload.length} bytes is over the limit of ${this.pipeline.snapshot.gateway.maxBodyBytes}`);
    }
    const d = decodeRequest(msg, payload.doc, payload.problem);
    const identity = await this.pipeline.authenticate(d.creds, record);
    who.app = identity.app;
    const model = this.pipeline.authorize(identity, modelName, 'infer', record);
    this.checkReplyTopic(dest, identity.app);
    const limit = this.pipeline.maxBodyBytes(model);
    if (d.body.length > limit) throw new MGError('MG_TOO_LARGE', `payload is over model "${model.name}"'s limit of ${limit} bytes`);
    validateKserveInfer(d.body, undefined);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': id };
    if (record.trace !== undefined) headers['traceparent'] = backendTraceparent(record.trace);
    const call: InferenceCall = {
      id,
      protocol: 'mqtt',
      api: 'kserve-v2',
      op: 'infer',
      model: model.name,
      method: 'POST',
      path: `/v2/models/${encodeURIComponent(model.backendModel)}/infer`,
      headers,
      body: d.body,
      timeoutMs: d.timeoutMs,
      // MQTT has no way to take a request back: the call is never cancelled by the client.
      signal: new Cancel(),
      receivedAt: started,
      costHint: undefined,
    };
    const answer = await this.pipeline.run(call, identity, record);
    record.servedBy = answer.servedBy;
    const body = Buffer.isBuffer(answer.body) ? answer.body : await readAll(answer.body, MAX_ERROR_BODY);
    if (answer.status < 200 || answer.status >= 300) throw backendRejection(answer.status, body);
    return successReply(to, body, answer.servedBy, id, answersNameOther(model, modelName) ? modelName : undefined);
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
  private refuse(record: RequestRecord, topic: string, why: string): void {
    this.stats.refused++;
    if (record.outcome === 'OK') record.outcome = 'MG_BAD_REQUEST';
    if (record.status === 0 || record.status === 200) record.status = 400;
    const now = performance.now();
    if (now - this.lastRefusalLog > 10_000) {
      this.lastRefusalLog = now;
      process.stderr.write(`modelguard: MQTT request on ${echo(topic)} not run: ${why} (${this.stats.refused} so far)\n`);
    }
    this.pipeline.events.publish(record);
  }

  /** No reply topic at all: nobody to tell, so count it, log it (at most every 10 s) and move on. */
  private drop(record: RequestRecord, topic: string): void {
    this.stats.dropped++;
    record.outcome = 'MG_BAD_REQUEST';
    record.status = 400;
    record.model = undefined;
    const now = performance.now();
    if (now - this.lastDropLog > 10_000) {
      this.lastDropLog = now;
      process.stderr.write(`modelguard: MQTT request on ${topic} dropped: no responseTopic (MQTT 5) or "replyTo" (MQTT 3.1.1) to answer on (${this.stats.dropped} so far)\n`);
    }
    this.pipeline.events.publish(record);
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
    const record = newRecord('mqtt-connect', 'mqtt', performance.now());
    record.source = source;
    try {
      const id = await pipeline.authenticate({ key, group: undefined }, record);
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
