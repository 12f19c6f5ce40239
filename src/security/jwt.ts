/**
 * JWT identities (Gateway.spec.jwt): a signed token from the operator's identity provider names the
 * app in one claim. `jose` checks the signature against the JWKS (a file, or a URL fetched and
 * cached), the algorithm allow-list, issuer, audience, expiry and not-before. HMAC and `none` are
 * never accepted: a token must be signed with a key ModelGuard only holds the public half of.
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { MGError } from '../core/errors.ts';
import type { JwtSnapshot } from '../core/snapshot.ts';

/** Three base64url segments: a compact JWS. API keys (`mg_…`) never contain dots. */
export function looksLikeJwt(token: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
}

export class JwtVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(readonly config: JwtSnapshot) {
    if (config.jwksUrl !== undefined) {
      this.keys = createRemoteJWKSet(new URL(config.jwksUrl), { cacheMaxAge: config.cacheMaxAgeMs, cooldownDuration: 30_000, timeoutDuration: 5000 });
    } else {
      const file = config.jwksFile as string;
      let set: JSONWebKeySet;
      try {
        set = JSON.parse(readFileSync(file, 'utf8')) as JSONWebKeySet;
      } catch (err) {
        throw new Error(`Gateway.spec.jwt.jwksFile ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      this.keys = createLocalJWKSet(set);
    }
  }

  /** The app the token names; MG_UNAUTHENTICATED for any token that does not verify. */
  async app(token: string): Promise<string> {
    try {
      const { payload } = await jwtVerify(token, this.keys, {
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
      throw new MGError('MG_UNAUTHENTICATED', `JWT not accepted: ${reason(err)}`);
    }
  }
}

/** A short reason without echoing the token. */
function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason}`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no matching key in the JWKS';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JOSEError) return err.code;
  return 'invalid token';
}
