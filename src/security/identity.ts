/**
 * Who is calling: an API key (stored only as its sha256) maps to an App and its service group.
 * Under `auth: none`, the `X-Service-Group` header picks the group (trusted networks and demos).
 */
import crypto from 'node:crypto';
import { MGError } from '../core/errors.ts';
import type { Identity } from '../core/request.ts';
import { DEFAULT_GROUP, type Snapshot } from '../core/snapshot.ts';
import { looksLikeJwt, type JwtVerifier } from './jwt.ts';

export interface Credentials {
  /** The raw API key presented, if any. */
  readonly key: string | undefined;
  /** The group asked for with X-Service-Group (honoured only under `auth: none`). */
  readonly group: string | undefined;
}

/** One-shot `crypto.hash` (Node ≥ 20.12: a third of the cost for a key-sized input, and it runs per request); a Hash object before. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function sha256Hex(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

export class IdentityResolver {
  /** sha256(key) → app. Looking up a digest reveals nothing an attacker could use (no timing oracle on the key). */
  private readonly byHash = new Map<string, Identity>();

  constructor(
    private readonly snapshot: Snapshot,
    private readonly jwt?: JwtVerifier,
  ) {
    for (const app of Object.values(snapshot.apps)) {
      for (const h of app.keyHashes) this.byHash.set(h, { app: app.name, group: app.serviceGroup });
    }
  }

  /** Synchronous for API keys (the common case); a promise only for a JWT, whose keys may need fetching. */
  resolve(creds: Credentials): Identity | Promise<Identity> {
    if (creds.key !== undefined) {
      const id = this.byHash.get(sha256Hex(creds.key));
      if (id) return id;
      if (this.jwt && looksLikeJwt(creds.key)) return this.fromJwt(this.jwt, creds.key);
      throw new MGError('MG_UNAUTHENTICATED', 'API key not recognised');
    }
    if (this.snapshot.gateway.auth === 'apiKey') {
      throw new MGError('MG_UNAUTHENTICATED', 'an API key is required (Authorization: Bearer <key> or X-API-Key)');
    }
    const group = creds.group ?? DEFAULT_GROUP;
    if (!this.snapshot.groups[group]) {
      throw new MGError('MG_BAD_REQUEST', `unknown service group "${group}" in X-Service-Group`);
    }
    return { app: undefined, group };
  }

  private async fromJwt(jwt: JwtVerifier, token: string): Promise<Identity> {
    const name = await jwt.app(token);
    const app = Object.hasOwn(this.snapshot.apps, name) ? this.snapshot.apps[name] : undefined;
    if (!app) throw new MGError('MG_UNAUTHENTICATED', `JWT names app "${name.slice(0, 64)}", which is not configured`);
    return { app: app.name, group: app.serviceGroup };
  }
}
