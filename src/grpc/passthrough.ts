/**
 * How a gRPC pass-through call travels through the HTTP-shaped neutral request and reply.
 *
 *   request:  path = "/pkg.Service/Method", body = the message bytes as received,
 *             content-type = application/grpc (marks it as a raw gRPC call), metadata as headers
 *   reply:    body = the answer's message bytes (empty on error), headers =
 *             grpc-status, grpc-message, initial metadata as is, trailers as "trailer:<key>"
 *
 * Binary (`-bin`) metadata travels base64-encoded, comma-separated when repeated (as on the wire).
 */
import { Metadata } from '@grpc/grpc-js';

export const GRPC_CONTENT_TYPE = 'application/grpc';
const TRAILER = 'trailer:';

export function isGrpcPassthrough(headers: Readonly<Record<string, string>>): boolean {
  return headers['content-type'] === GRPC_CONTENT_TYPE;
}

/** Header-style text of one metadata object (every value, not only the first). */
export function metadataToRecord(md: Metadata, into: Record<string, string> = {}, prefix = ''): Record<string, string> {
  for (const [key, values] of Object.entries(md.toJSON())) {
    if (values.length === 0) continue;
    const texts = values.map((v) => (typeof v === 'string' ? v : v.toString('base64')));
    into[prefix + key] = texts.join(key.endsWith('-bin') ? ',' : ', ');
  }
  return into;
}

/** Adds header-style entries back into metadata; `-bin` values are base64 and may be comma-separated. */
export function addToMetadata(md: Metadata, key: string, value: string): void {
  try {
    if (key.endsWith('-bin')) for (const part of value.split(',')) md.add(key, Buffer.from(part.trim(), 'base64'));
    else md.add(key, value);
  } catch {
    // A key grpc-js refuses (reserved or malformed) is not forwarded.
  }
}

export function replyHeaders(code: number, details: string, initial: Metadata | undefined, trailers: Metadata | undefined): Record<string, string> {
  const h: Record<string, string> = { 'grpc-status': String(code), 'grpc-message': details, 'content-type': GRPC_CONTENT_TYPE };
  if (initial) metadataToRecord(initial, h);
  if (trailers) metadataToRecord(trailers, h, TRAILER);
  return h;
}

/** The backend's status, initial metadata and trailers from a pass-through reply's headers. */
export function splitReply(headers: Readonly<Record<string, string>>): { code: number; details: string; initial: Metadata; trailers: Metadata } {
  const initial = new Metadata();
  const trailers = new Metadata();
  for (const [k, v] of Object.entries(headers)) {
    if (k === 'grpc-status' || k === 'grpc-message' || k === 'content-type' || k === 'x-request-id') continue;
    if (k.startsWith(TRAILER)) addToMetadata(trailers, k.slice(TRAILER.length), v);
    else addToMetadata(initial, k, v);
  }
  const code = Number(headers['grpc-status'] ?? 0);
  return { code: Number.isInteger(code) ? code : 2, details: headers['grpc-message'] ?? '', initial, trailers };
}
