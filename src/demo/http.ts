/** Small node:http helpers shared by the KServe and OpenAI routes of the demo server. */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An answer other than 200, thrown by validation and routing; the route turns it into its protocol's error body. */
export class HttpError extends Error {
  readonly status: number;
  /** OpenAI-style error code (`model_not_found`, ...), for the /v1 routes. */
  readonly code: string | undefined;
  constructor(status: number, message: string, code?: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
  }
}

export const badRequest = (message: string): HttpError => new HttpError(400, message, 'invalid_request');
export const notFound = (message: string, code = 'not_found'): HttpError => new HttpError(404, message, code);

/** Largest accepted request body; a bigger one is answered 413 (the demo is not a bulk store). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Reads the whole body, or rejects with a 413 HttpError past `limit` bytes. */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `request body over ${limit} bytes`, 'request_too_large'));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks)));
    req.once('error', reject);
    // A client that disconnects mid-upload emits neither 'end' nor always 'error'; settle anyway.
    req.once('close', () => {
      if (!req.complete) reject(new HttpError(400, 'client closed the connection before sending the whole body', 'incomplete_body'));
    });
  });
}

/** Parses a JSON body; an empty or malformed body is a 400. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req);
  if (body.length === 0) throw badRequest('request body is empty; expected JSON');
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Calls `fn` if the client disconnects before the response is finished. Returns a detach function. */
export function onClientGone(res: ServerResponse, fn: () => void): () => void {
  const listener = (): void => {
    if (!res.writableFinished) fn();
  };
  res.once('close', listener);
  return () => res.off('close', listener);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
