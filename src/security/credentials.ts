/**
 * The one credential parser: what a caller presented, from whichever place its protocol carries it,
 * into the Credentials the IdentityResolver checks. HTTP headers, gRPC metadata, MQTT 5 user
 * properties and payload fields, the MQTT CONNECT password and the link's proxy token all come
 * through here, so the rules are the same everywhere:
 *
 * - `authorization` must be `Bearer <token>` (scheme case-insensitive, one token, no commas: a
 *   joined repeat such as `Bearer a, Bearer b` is refused rather than read as its first half);
 * - every place that carries a key must carry the same key (no "first one wins" between them);
 * - the connection's proven key (MQTT CONNECT) stands in only when the message carries none.
 *
 * Repetition of a header or metadata key is refused by the adapter before this (it knows how its
 * protocol joins repeats); the messages name the protocol's own spelling of each place.
 */
import { MGError } from '../core/errors.ts';
import type { Credentials } from './identity.ts';

const BEARER = /^Bearer[ ]+([^\s,]+)$/i;

/** The token of a `Bearer <token>` header, or undefined when the value is not of that form. */
export function bearerToken(header: string): string | undefined {
  return BEARER.exec(header.trim())?.[1];
}

/** How each place is called in the protocol (for messages): `Authorization`, `authorization metadata`, … */
export interface CredentialLabels {
  readonly authorization: string;
  readonly apiKey: string;
  readonly payloadKey?: string;
}

export const HTTP_LABELS: CredentialLabels = { authorization: 'Authorization', apiKey: 'X-API-Key' };
export const GRPC_LABELS: CredentialLabels = { authorization: 'authorization metadata', apiKey: 'x-api-key metadata' };
export const MQTT_LABELS: CredentialLabels = { authorization: 'user property authorization', apiKey: 'user property x-api-key', payloadKey: '"apiKey"' };

export interface PresentedCredentials {
  /** `Authorization` header, `authorization` metadata or MQTT 5 user property. */
  readonly authorization?: string | undefined;
  /** `X-API-Key` header, metadata or MQTT 5 user property. */
  readonly apiKey?: string | undefined;
  /** A key inside the message (MQTT payload `apiKey`): any JSON value, checked to be a string here. */
  readonly payloadKey?: unknown;
  /** The key proven when the connection was opened (MQTT CONNECT password on the embedded broker). */
  readonly connectionKey?: string | undefined;
  /** X-Service-Group (honoured only under `auth: none`). */
  readonly group?: unknown;
}

/** The key and group a caller presented; MG_UNAUTHENTICATED when the places disagree or are malformed. */
export function parseCredentials(p: PresentedCredentials, labels: CredentialLabels): Credentials {
  let key: string | undefined;
  if (p.authorization !== undefined) {
    key = bearerToken(p.authorization);
    if (key === undefined) throw new MGError('MG_UNAUTHENTICATED', `${labels.authorization} must be "Bearer <key>"`);
  }
  if (p.apiKey !== undefined) {
    const k = p.apiKey.trim();
    if (key !== undefined && key !== k) throw new MGError('MG_UNAUTHENTICATED', `${labels.authorization} and ${labels.apiKey} disagree`);
    key = k;
  }
  if (p.payloadKey !== undefined) {
    const what = labels.payloadKey ?? 'the key in the message';
    if (typeof p.payloadKey !== 'string') throw new MGError('MG_UNAUTHENTICATED', `${what} must be a string`);
    if (key !== undefined && key !== p.payloadKey) throw new MGError('MG_UNAUTHENTICATED', `${what} and the ${p.authorization !== undefined ? labels.authorization : labels.apiKey} disagree`);
    key = p.payloadKey;
  }
  key ??= p.connectionKey;
  const group = typeof p.group === 'string' ? p.group.trim() : undefined;
  return { key, group };
}

/**
 * The token an admin request presents: `Authorization: Bearer` (parsed as every other credential),
 * or `?token=` (browsers' EventSource cannot send headers).
 */
export function presentedToken(req: { readonly headers: { authorization?: string | undefined }; readonly url?: string | undefined }): string | undefined {
  const auth = req.headers.authorization;
  const bearer = auth === undefined ? undefined : bearerToken(auth);
  if (bearer !== undefined) return bearer;
  const q = /[?&]token=([^&]*)/.exec(req.url ?? '');
  if (!q) return undefined;
  try {
    return decodeURIComponent(q[1] ?? '');
  } catch {
    return undefined;
  }
}
