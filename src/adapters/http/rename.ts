/**
 * OpenAI answers name the model the client asked for. A ModelGuard model may be an alias of a
 * backend model (`backendModel`); the backend's answer names its own, so `model` is rewritten: in a
 * JSON answer, and in every `data:` event of a stream (SSE), as the events pass.
 */
import { Transform } from 'node:stream';
import type { BackendReply } from '../../core/request.ts';
import { parseExact, stringifyExact } from '../../core/exact-json.ts';

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
