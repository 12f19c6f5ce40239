/**
 * Answers name the model the client asked for. A ModelGuard model may be an alias of a backend
 * model (`backendModel`, or the offload target's name in the cloud); the backend's answer names its
 * own, so it is rewritten on the way back:
 *
 * - OpenAI: `model`, in a JSON answer and in every `data:` event of a stream (SSE), as events pass.
 * - KServe v2 (over every protocol: the gRPC and MQTT adapters' answers are KServe REST bodies
 *   inside ModelGuard, renamed in the exchange before the adapter encodes them): `model_name` of an infer answer, `name` of model metadata and readiness. Only that
 *   value's bytes change (src/core/json-splice.ts): tensors are neither parsed nor re-encoded. In a
 *   binary-data answer the JSON header is renamed and `Inference-Header-Content-Length` recomputed;
 *   the tensor bytes after it are the backend's.
 */
import { Transform } from 'node:stream';
import { readBounded } from '../core/body.ts';
import { MGError } from '../core/errors.ts';
import type { ApiKind, Operation } from '../core/request.ts';
import type { BackendReply } from '../core/request.ts';
import type { ModelSnapshot } from '../core/snapshot.ts';
import { parseExact, stringifyExact } from '../core/exact-json.ts';
import { setTopLevel } from '../core/json-splice.ts';
import { parseHeaderLength } from '../core/kserve-frame.ts';

function renamed(json: string, name: string): string | undefined {
  let doc: unknown;
  try {
    doc = parseExact(json);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || typeof (doc as Record<string, unknown>)['model'] !== 'string') return undefined;
  return stringifyExact({ ...(doc as Record<string, unknown>), model: name });
}

/** An SSE stream with `model` rewritten in each JSON `data:` line; other lines pass unchanged. */
function renameEvents(name: string): Transform {
  let rest = '';
  const line = (l: string): string => {
    if (!l.startsWith('data:')) return l;
    const payload = l.slice(5).trim();
    if (!payload.startsWith('{')) return l;
    const r = renamed(payload, name);
    return r === undefined ? l : `data: ${r}`;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const text = rest + chunk.toString('utf8');
      const end = text.lastIndexOf('\n');
      if (end < 0) {
        rest = text;
        cb();
        return;
      }
      rest = text.slice(end + 1);
      cb(null, text.slice(0, end + 1).split('\n').map(line).join('\n'));
    },
    flush(cb) {
      cb(null, rest === '' ? undefined : line(rest));
    },
  });
}

export function renameModel(reply: BackendReply, name: string): BackendReply {
  if (reply.status < 200 || reply.status >= 300) return reply;
  if (Buffer.isBuffer(reply.body)) {
    const r = renamed(reply.body.toString('utf8'), name);
    return r === undefined ? reply : { ...reply, body: Buffer.from(r) };
  }
  if (!(reply.headers['content-type'] ?? '').includes('text/event-stream')) return reply;
  const source = reply.body;
  const out = renameEvents(name);
  source.on('error', (err) => out.destroy(err));
  // The slot is released when the backend's body ends: keep listening to it, not to the copy.
  source.pipe(out);
  const headers = { ...reply.headers };
  delete headers['content-length'];
  return { ...reply, headers, body: out };
}

/** Whether answers for a call that asked for `asked` may name another model: an alias, or a cloud model known by another name. */
export function answersNameOther(model: ModelSnapshot, asked: string): boolean {
  return model.backendModel !== asked || (model.offload !== undefined && model.offload.backendModel !== asked);
}

/** The KServe field that names the model: `model_name` in an infer answer, `name` in model metadata (and KServe's readiness answer). */
export type KserveNameField = 'model_name' | 'name';

/**
 * A KServe v2 answer body with its top-level `field` set to `name`: in the JSON, or in the JSON
 * header of a binary-data answer (`Inference-Header-Content-Length` then gives the new header's
 * length). A body that is not a JSON object (or a header that does not fit) is left as it came.
 */
export function renameKserveBody(body: Buffer, headers: Readonly<Record<string, string>>, field: KserveNameField, name: string): { body: Buffer; headers: Record<string, string> } {
  const out = { ...headers };
  const lengthValue = headers['inference-header-content-length'];
  const headerLength = lengthValue === undefined ? body.length : parseHeaderLength(lengthValue);
  if (headerLength === undefined || headerLength > body.length) return { body, headers: out };
  const header = setTopLevel(body.subarray(0, headerLength), field, JSON.stringify(name));
  if (header === undefined) return { body, headers: out };
  delete out['content-length'];
  if (lengthValue === undefined) return { body: header, headers: out };
  out['inference-header-content-length'] = String(header.length);
  return { body: Buffer.concat([header, body.subarray(headerLength)]), headers: out };
}

/** Largest answer read to be renamed (a streamed metadata answer; infer answers arrive whole). */
const MAX_RENAMED_BYTES = 64 * 1024 * 1024;
const tooLarge = (limit: number): MGError => new MGError('MG_BACKEND_ERROR', `backend answer larger than ${limit} bytes`);

/** A KServe v2 reply renamed as renameKserveBody does; a streamed body (metadata) is read first. Errors pass unchanged. */
export async function renameKserve(reply: BackendReply, field: KserveNameField, name: string): Promise<BackendReply> {
  if (reply.status < 200 || reply.status >= 300) return reply;
  const body = await readBounded(reply.body, { limit: MAX_RENAMED_BYTES, over: tooLarge, destroyWhenOver: true });
  const r = renameKserveBody(body, reply.headers, field, name);
  return { ...reply, headers: r.headers, body: r.body };
}

/**
 * The answer as the client asked for it, whatever protocol it came by: the model named as the
 * client named it (an alias, a cloud model of another name). Pass-through answers are the backend's.
 */
export async function answerAsAsked(reply: BackendReply, asked: { api: ApiKind; op: Operation; method: string; model: string }, model: ModelSnapshot): Promise<BackendReply> {
  if (!answersNameOther(model, asked.model)) return reply;
  if (asked.api === 'openai') return renameModel(reply, asked.model);
  if (asked.api === 'kserve-v2' && asked.method !== 'HEAD') return renameKserve(reply, asked.op === 'infer' ? 'model_name' : 'name', asked.model);
  return reply;
}
