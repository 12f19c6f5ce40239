/**
 * What a backend request may carry. Headers that describe one connection or one message framing
 * (hop-by-hop, content-length, expect, upgrade) are the client's own business: copied from a
 * caller (an HTTP header or a gRPC metadata entry) they make the local client refuse the call, and
 * that refusal must not look like a refused connection. They are dropped here, for every client.
 */
/** Headers of one connection, never passed on in either direction (RFC 9110 §7.6.1). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

export const NOT_FORWARDED: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'host', 'expect', 'content-length', 'http2-settings']);

/** `headers` without NOT_FORWARDED entries (the same object when there are none: the common case). */
export function forwardable(headers: Record<string, string>): Record<string, string> {
  let out: Record<string, string> | undefined;
  for (const k in headers) {
    if (!NOT_FORWARDED.has(k)) continue;
    out ??= { ...headers };
    delete out[k];
  }
  return out ?? headers;
}
