/**
 * A request PUBLISH decoded: the reply address, the caller's key and deadline, and the KServe v2
 * body to forward. The envelope fields (`replyTo`, `timeoutMs`, `apiKey`, `serviceGroup`) are
 * ModelGuard's, not the model's: they are taken out before the body goes to the backend, so a key
 * never reaches a model server. A string `id` is KServe's own request id and stays (the backend
 * echoes it); any other `id` is taken out and put back into the reply.
 */
import { MGError } from '../../core/errors.ts';
import { MQTT_LABELS, parseCredentials } from '../../security/credentials.ts';
import type { Credentials } from '../../security/identity.ts';
import type { RequestMessage } from './transport.ts';

/** Where and how the answer goes. */
export interface ReplyAddress {
  readonly topic: string;
  /** MQTT 5 reply (properties) or MQTT 3.1.1 reply (everything in the payload). */
  readonly v5: boolean;
  readonly correlationData: Buffer | undefined;
  /** The caller's `id`, echoed in the reply payload (any JSON value). */
  readonly id: unknown;
}

export interface DecodedRequest {
  readonly reply: ReplyAddress | undefined;
  readonly creds: Credentials;
  readonly timeoutMs: number | undefined;
  readonly body: Buffer;
}

const ENVELOPE = ['replyTo', 'timeoutMs', 'apiKey', 'serviceGroup'] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A single user property value (MQTT 5 allows repeats; an identity property may appear once). */
function prop(msg: RequestMessage, name: string): string | undefined {
  const v = msg.userProperties?.[name];
  if (Array.isArray(v)) throw new MGError('MG_BAD_REQUEST', `user property ${name} given more than once`);
  return v;
}

/** A valid MQTT topic to publish a reply on: no wildcards, not empty, not a $SYS-like topic. */
function replyTopicProblem(topic: string): string | undefined {
  if (topic === '') return 'is empty';
  if (topic.includes('+') || topic.includes('#')) return 'must not contain wildcards';
  if (topic.startsWith('$')) return 'must not start with "$"';
  if (Buffer.byteLength(topic) > 65535) return 'is too long';
  return undefined;
}

/**
 * The reply address alone, read before anything can fail, so every later failure can be answered.
 * Undefined when the request names none (or none that can be used).
 */
export function replyAddress(msg: RequestMessage, doc: unknown): ReplyAddress | undefined {
  const id = isRecord(doc) ? doc['id'] : undefined;
  if (msg.responseTopic !== undefined && replyTopicProblem(msg.responseTopic) === undefined) {
    return { topic: msg.responseTopic, v5: true, correlationData: msg.correlationData, id };
  }
  const replyTo = isRecord(doc) ? doc['replyTo'] : undefined;
  if (typeof replyTo === 'string' && replyTopicProblem(replyTo) === undefined) return { topic: replyTo, v5: false, correlationData: undefined, id };
  return undefined;
}

export function parsePayload(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Everything else; throws MG_BAD_REQUEST or MG_UNAUTHENTICATED with the reason. */
export function decodeRequest(msg: RequestMessage, doc: unknown): Omit<DecodedRequest, 'reply'> {
  if (doc === undefined) throw new MGError('MG_BAD_REQUEST', 'payload is not valid JSON');
  if (!isRecord(doc)) throw new MGError('MG_BAD_REQUEST', 'payload must be a JSON object (a KServe v2 inference request)');
  const replyTo = doc['replyTo'];
  if (replyTo !== undefined && (typeof replyTo !== 'string' || replyTopicProblem(replyTo) !== undefined)) {
    throw new MGError('MG_BAD_REQUEST', `"replyTo" ${typeof replyTo === 'string' ? replyTopicProblem(replyTo) : 'must be a topic string'}`);
  }
  const t = doc['timeoutMs'];
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)) {
    throw new MGError('MG_BAD_REQUEST', '"timeoutMs" must be a positive number of milliseconds');
  }

  // A key per request: MQTT 5 user property, or a payload field; on the embedded broker the
  // connection's own key stands in when the request carries none.
  const creds = parseCredentials(
    {
      authorization: prop(msg, 'authorization'),
      apiKey: prop(msg, 'x-api-key'),
      payloadKey: doc['apiKey'],
      connectionKey: msg.connectionKey,
      group: prop(msg, 'x-service-group') ?? doc['serviceGroup'],
    },
    MQTT_LABELS,
  );

  // Re-encode only when the envelope has to come out; a plain KServe body is forwarded as it came.
  let body = msg.payload;
  const foreignId = doc['id'] !== undefined && typeof doc['id'] !== 'string';
  if (foreignId || ENVELOPE.some((f) => doc[f] !== undefined)) {
    const forward: Record<string, unknown> = { ...doc };
    for (const f of ENVELOPE) delete forward[f];
    if (foreignId) delete forward['id'];
    body = Buffer.from(JSON.stringify(forward));
  }
  return { creds, timeoutMs: t, body };
}
