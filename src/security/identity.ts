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
  /** The connection's last recognised key, where the protocol keeps connections open (see KeyMemo). */
  readonly memo?: KeyMemo | undefined;
}

/**
 * The last key a connection presented and was recognised with, and by which resolver (a reload
 * makes a new one, so a revoked key is looked up again). A keep-alive client sends the same key on
 * every request: comparing it with the remembered one costs a quarter of hashing it. The comparison
 * runs in time independent of where the keys differ, because a connection can carry more than one
 * client's requests (a reverse proxy in front pools its upstream connections).
 */
export interface KeyMemo {
  resolver?: IdentityResolver;
  key?: string;
  identity?: Identity;
}

/** Equal strings, in time that depends only on their lengths. */
function sameKey(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
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
      const memo = creds.memo;
      if (memo !== undefined && memo.resolver === this && memo.identity !== undefined && sameKey(memo.key ?? '', creds.key)) return memo.identity;
      const id = this.byHash.get(sha256Hex(creds.key));
      if (id) {
        if (memo !== undefined) {
          memo.resolver = this;
          memo.key = creds.key;
          memo.identity = id;
        }
        return id;
      }
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
