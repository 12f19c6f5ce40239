/**
 * JWT identities (Gateway.spec.jwt): a signed token from the operator's identity provider names the
 * app in one claim. `jose` checks the signature against the JWKS (a file, or a URL fetched and
 * cached), the algorithm allow-list, issuer, audience, expiry and not-before. HMAC and `none` are
 * never accepted: a token must be signed with a key ModelGuard only holds the public half of.
 */
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { MGError } from '../core/errors.ts';
import type { JwtSnapshot } from '../core/snapshot.ts';

/** Three base64url segments: a compact JWS. API keys (`mg_…`) never contain dots. */
export function looksLikeJwt(token: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
}

type Jose = typeof import('jose');

/** `jose` is loaded with the first token: a configuration without JWT never loads it. */
let joseModule: Promise<Jose> | undefined;
const loadJose = (): Promise<Jose> => (joseModule ??= import('jose'));

export class JwtVerifier {
  private readonly set: JSONWebKeySet | undefined;
  private keys: JWTVerifyGetKey | undefined;

  constructor(readonly config: JwtSnapshot) {
    // A JWKS file is read (and refused) at once, with the configuration; the key set is built on first use.
    if (config.jwksUrl === undefined) {
      const file = config.jwksFile as string;
      try {
        this.set = JSON.parse(readFileSync(file, 'utf8')) as JSONWebKeySet;
      } catch (err) {
        throw new Error(`Gateway.spec.jwt.jwksFile ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      // The shape jose's createLocalJWKSet requires, checked here so a bad file is refused with the configuration.
      const keys: unknown = (this.set as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) {
        throw new Error(`Gateway.spec.jwt.jwksFile ${file}: JSON Web Key Set malformed (expected {"keys": [ ... ]})`);
      }
    }
  }

  private keySet(jose: Jose): JWTVerifyGetKey {
    const c = this.config;
    this.keys ??=
      c.jwksUrl !== undefined
        ? jose.createRemoteJWKSet(new URL(c.jwksUrl), { cacheMaxAge: c.cacheMaxAgeMs, cooldownDuration: 30_000, timeoutDuration: 5000 })
        : jose.createLocalJWKSet(this.set as JSONWebKeySet);
    return this.keys;
  }

  /** The app the token names; MG_UNAUTHENTICATED for any token that does not verify. */
  async app(token: string): Promise<string> {
    const jose = await loadJose();
    try {
      const { payload } = await jose.jwtVerify(token, this.keySet(jose), {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: [...this.config.algorithms],
        clockTolerance: Math.round(this.config.clockToleranceMs / 1000),
        requiredClaims: ['exp'],
      });
      const app = payload[this.config.appClaim];
      if (typeof app !== 'string' || app === '') throw new MGError('MG_UNAUTHENTICATED', `JWT has no "${this.config.appClaim}" claim naming an app`);
      return app;
    } catch (err) {
      if (err instanceof MGError) throw err;
      throw new MGError('MG_UNAUTHENTICATED', `JWT not accepted: ${reason(jose.errors, err)}`);
    }
  }
}

/** A short reason without echoing the token. */
function reason(joseErrors: Jose['errors'], err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason}`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no matching key in the JWKS';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JOSEError) return err.code;
  return 'invalid token';
}
