/**
 * Replies in the MQTT contract: the backend's KServe v2 answer as it came (the same Buffer the
 * HTTP path sends), or `{ "error": { "code", "message" }, "id" }`. MQTT 5 replies carry the
 * correlation data and user properties; MQTT 3.1.1 replies carry `id` and `servedBy` in the
 * payload. `servedBy` is spliced in front of the backend's JSON, and the caller's `id` (and, for
 * an alias, the `model_name` it asked for) is set in place (src/core/json-splice.ts): the answer is
 * never parsed and re-encoded, so every tensor value reaches the caller as the backend wrote it.
 */
import type { MGError } from '../../core/errors.ts';
import { stringifyExact } from '../../core/exact-json.ts';
import { setTopLevel } from '../../core/json-splice.ts';
import type { ReplyAddress } from './decode.ts';
import type { ReplyMessage } from './transport.ts';

const OPEN_BRACE = 0x7b;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** `{"k":v,...rest of the backend object}`: fields added without parsing the answer. */
function prepend(fields: string, body: Buffer): Buffer {
  let i = 0;
  while (i < body.length && isSpace(body[i])) i++;
  if (body[i] !== OPEN_BRACE) return body;
  let j = i + 1;
  while (j < body.length && isSpace(body[j])) j++;
  const empty = body[j] === 0x7d;
  return Buffer.concat([Buffer.from(`{${fields}${empty ? '' : ','}`), body.subarray(i + 1)]);
}

/** The answer with top-level `key` set to a value (exact JSON: a numeric id of 2^63−1 keeps its digits); an answer that is not a JSON object as it came. */
function withField(body: Buffer, key: string, value: unknown): Buffer {
  if (value === undefined) return body;
  return setTopLevel(body, key, stringifyExact(value)) ?? body;
}

/** The answer as the exchange gave it (an alias's answer already names the model asked for), with the caller's `id`. */
export function successReply(to: ReplyAddress, body: Buffer, servedBy: 'edge' | 'cloud', requestId: string): ReplyMessage {
  const payload = withField(body, 'id', to.id);
  if (to.v5) {
    return { topic: to.topic, payload, correlationData: to.correlationData, userProperties: { 'x-modelguard-served-by': servedBy, 'x-request-id': requestId } };
  }
  return { topic: to.topic, payload: prepend(`"servedBy":"${servedBy}"`, payload), correlationData: undefined, userProperties: undefined };
}

export function errorReply(to: ReplyAddress, err: MGError, requestId: string, servedBy: 'edge' | 'cloud' | undefined): ReplyMessage {
  const retryAfterMs = err.spec.retryable && err.retryAfterMs !== undefined ? Math.ceil(err.retryAfterMs) : undefined;
  const doc: Record<string, unknown> = { error: { code: err.code, message: err.message, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) } };
  if (to.id !== undefined) doc['id'] = to.id;
  if (servedBy !== undefined && !to.v5) doc['servedBy'] = servedBy;
  const userProperties: Record<string, string> | undefined = to.v5 ? { 'x-modelguard-error': err.code, 'x-request-id': requestId } : undefined;
  if (userProperties && retryAfterMs !== undefined) userProperties['x-modelguard-retry-after-ms'] = String(retryAfterMs);
  if (userProperties && servedBy !== undefined) userProperties['x-modelguard-served-by'] = servedBy;
  return { topic: to.topic, payload: Buffer.from(stringifyExact(doc)), correlationData: to.correlationData, userProperties };
}
