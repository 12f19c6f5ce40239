/**
 * A request PUBLISH decoded: the reply address, the caller's key and deadline, and the KServe v2
 * body to forward. The envelope fields (`replyTo`, `timeoutMs`, `apiKey`, `serviceGroup`) are
 * ModelGuard's, not the model's: they are taken out before the body goes to the backend, so a key
 * never reaches a model server. A string `id` is KServe's own request id and stays (the backend
 * echoes it); any other `id` is taken out and put back into the reply.
 *
 * The payload is untrusted: its nesting is bounded by a linear scan before any parser (or any
 * recursive walk) sees it, and a payload refused for its nesting still yields the top-level
 * `replyTo` and `id` it can, so it is answered like any other bad request.
 *
 * Numbers keep every bit, as on HTTP and gRPC: the payload is read with the exact-JSON codec
 * (integers beyond 2^53 as bigint) and a body re-encoded without the envelope writes -0 as `-0.0`
 * and 64-bit integers with all their digits. MQTT payloads are JSON: a request for binary-data
 * outputs (Triton's extension, framed by an HTTP header MQTT does not have) is refused.
 */
import { MGError } from '../../core/errors.ts';
import { parseExact, stringifyExact } from '../../core/exact-json.ts';
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

/**
 * Deepest JSON nesting a request payload may have. A KServe v2 request nests an object, its
 * inputs, a tensor and its data as deep as the tensor's rank: 64 leaves room for any real shape
 * while a payload of 100k brackets is refused by a scan before any parser or recursive walk
 * can overflow the stack.
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPENERS = new Set([0x7b, 0x5b]); // { [
const CLOSERS = new Set([0x7d, 0x5d]); // } ]

/** Whether the JSON text nests brackets deeper than `max` (strings skipped; one pass, no recursion). */
export function nestsDeeperThan(bytes: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (OPENERS.has(b)) {
      if (++depth > max) return true;
    } else if (CLOSERS.has(b)) depth--;
  }
  return false;
}

/** A parsed payload: the document, or why there is none (and the envelope fields that could be salvaged). */
export interface Payload {
  /** The JSON document; for a payload nested too deep, only its top-level `replyTo` and `id` when they are plain values. */
  readonly doc: unknown;
  /** Set when `doc` is not the payload: the MG_BAD_REQUEST reason. */
  readonly problem: string | undefined;
}

export function parsePayload(payload: Buffer): Payload {
  if (nestsDeeperThan(payload, MAX_JSON_DEPTH)) {
    return { doc: salvageEnvelope(payload), problem: `payload is nested deeper than ${MAX_JSON_DEPTH} levels` };
  }
  try {
    return { doc: parseExact(payload.toString('utf8')), problem: undefined };
  } catch {
    return { doc: undefined, problem: 'payload is not valid JSON' };
  }
}

/**
 * `replyTo` and `id` of a top-level object read without parsing the rest, so a payload refused for
 * its nesting can still be answered (MQTT 3.1.1 callers name their reply topic in the payload).
 * Nested values are skipped by counting brackets; an `id` that is itself nested is not salvaged
 * (the reply then carries none). Anything unexpected ends the scan with what was found.
 */
export function salvageEnvelope(bytes: Buffer): Record<string, unknown> | undefined {
  const found: Record<string, unknown> = {};
  let i = 0;
  const ws = (): void => {
    while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  };
  /** End (exclusive) of the string starting at i, or -1. */
  const stringEnd = (from: number): number => {
    for (let j = from + 1; j < bytes.length; j++) {
      if (bytes[j] === BACKSLASH) j++;
      else if (bytes[j] === QUOTE) return j + 1;
    }
    return -1;
  };
  const parse = (from: number, to: number): unknown => {
    try {
      return parseExact(bytes.toString('utf8', from, to));
    } catch {
      return undefined;
    }
  };
  ws();
  if (bytes[i] !== 0x7b) return undefined;
  i++;
  for (;;) {
    ws();
    if (bytes[i] !== QUOTE) return found;
    const keyEnd = stringEnd(i);
    if (keyEnd < 0) return found;
    const key = parse(i, keyEnd);
    i = keyEnd;
    ws();
    if (bytes[i] !== 0x3a) return found;
    i++;
    ws();
    const start = i;
    const b = bytes[i];
    if (b === undefined) return found;
    if (b === QUOTE) {
      i = stringEnd(i);
      if (i < 0) return found;
    } else if (OPENERS.has(b)) {
      let depth = 0;
      for (; i < bytes.length; i++) {
        const c = bytes[i] as number;
        if (c === QUOTE) {
          i = stringEnd(i) - 1;
          if (i < 0) return found;
        } else if (OPENERS.has(c)) depth++;
        else if (CLOSERS.has(c) && --depth === 0) break;
      }
      i++; // nested values are never kept
    } else {
      while (i < bytes.length && bytes[i] !== 0x2c && bytes[i] !== 0x7d) i++;
    }
    if (!OPENERS.has(b) && (key === 'replyTo' || key === 'id')) {
      const v = parse(start, i);
      if (v !== undefined) found[key] = v;
    }
    ws();
    if (bytes[i] !== 0x2c) return found;
    i++;
  }
}
/**
 * Binary-data outputs (`parameters.binary_data_output`, an output's `parameters.binary_data`) are
 * framed by the `Inference-Header-Content-Length` HTTP header, which an MQTT reply has no place for:
 * asking for them is refused rather than answered with bytes the caller cannot split. (Inputs with
 * `binary_data_size` are refused by the KServe check: the request has no header length.)
 */
function refuseBinaryOutputs(doc: Record<string, unknown>): void {
  const params = doc['parameters'];
  if (isRecord(params) && params['binary_data_output'] === true) {
    throw new MGError('MG_BAD_REQUEST', 'parameters.binary_data_output: MQTT answers are JSON; the binary-data extension is carried over HTTP and gRPC only');
  }
  const outputs = doc['outputs'];
  if (!Array.isArray(outputs)) return;
  outputs.forEach((o: unknown, i) => {
    if (isRecord(o) && isRecord(o['parameters']) && o['parameters']['binary_data'] === true) {
      throw new MGError('MG_BAD_REQUEST', `outputs[${i}].parameters.binary_data: MQTT answers are JSON; the binary-data extension is carried over HTTP and gRPC only`);
    }
  });
}

/** Everything else; throws MG_BAD_REQUEST or MG_UNAUTHENTICATED with the reason. */
export function decodeRequest(msg: RequestMessage, doc: unknown, problem?: string): Omit<DecodedRequest, 'reply'> {
  if (problem !== undefined) throw new MGError('MG_BAD_REQUEST', problem);
  if (doc === undefined) throw new MGError('MG_BAD_REQUEST', 'payload is not valid JSON');
  if (!isRecord(doc)) throw new MGError('MG_BAD_REQUEST', 'payload must be a JSON object (a KServe v2 inference request)');
  const replyTo = doc['replyTo'];
  if (replyTo !== undefined && (typeof replyTo !== 'string' || replyTopicProblem(replyTo) !== undefined)) {
    throw new MGError('MG_BAD_REQUEST', `"replyTo" ${typeof replyTo === 'string' ? replyTopicProblem(replyTo) : 'must be a topic string'}`);
  }
  // An integer too long for a double is read as bigint; as a deadline its size is all that matters.
  const given = doc['timeoutMs'];
  const t = typeof given === 'bigint' ? Number(given) : given;
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)) {
    throw new MGError('MG_BAD_REQUEST', '"timeoutMs" must be a positive number of milliseconds');
  }

  refuseBinaryOutputs(doc);

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
    body = Buffer.from(stringifyExact(forward));
  }
  return { creds, timeoutMs: t, body };
}
