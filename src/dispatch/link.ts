/**
 * What a backend link needs beyond a URL: TLS material and the credential header, read from the
 * files and environment variables the snapshot names (the snapshot never holds a secret). A link
 * that cannot be built does not stop the box: its calls fail as refused connections, so health and
 * the offload breaker keep traffic on the edge, and the reason is logged once.
 */
import { readFileSync } from 'node:fs';
import type { BackendCredentialsSnapshot, BackendSnapshot } from '../core/snapshot.ts';

/** The TLS settings a link uses (a subset of node:tls options). */
export interface LinkTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
}

export interface LinkOptions {
  /** TLS options for https:// endpoints (undici's `connect`). */
  readonly connect: LinkTls | undefined;
  /** Headers added to every call and probe (the credential). */
  readonly headers: Readonly<Record<string, string>>;
  /** Why the link cannot work (a missing secret or certificate file); calls fail with it. */
  readonly problem: string | undefined;
}

const NONE: LinkOptions = { connect: undefined, headers: {}, problem: undefined };

/** The secret a link sends (from an environment variable or a file, one trailing newline dropped). */
export function readSecret(c: BackendCredentialsSnapshot | undefined): string {
  if (c === undefined) return '';
  if (c.env !== undefined) {
    const v = process.env[c.env];
    if (v === undefined || v === '') throw new Error(`environment variable ${c.env} is not set`);
    return v;
  }
  const file = c.file as string;
  const v = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (v === '') throw new Error(`credentials file ${file} is empty`);
  return v;
}

export function linkOptions(backend: BackendSnapshot): LinkOptions {
  if (backend.tls === undefined && backend.credentials === undefined) return NONE;
  try {
    const t = backend.tls;
    const connect: LinkTls | undefined =
      t === undefined
        ? undefined
        : {
            ...(t.ca === undefined ? {} : { ca: readFileSync(t.ca) }),
            ...(t.cert === undefined ? {} : { cert: readFileSync(t.cert) }),
            ...(t.key === undefined ? {} : { key: readFileSync(t.key) }),
            ...(t.serverName === undefined ? {} : { servername: t.serverName }),
            rejectUnauthorized: !t.insecureSkipVerify,
          };
    const headers: Record<string, string> = {};
    const c = backend.credentials;
    if (c !== undefined) {
      const secret = readSecret(backend.credentials);
      headers[c.header] = c.scheme === '' ? secret : `${c.scheme} ${secret}`;
    }
    return { connect, headers, problem: undefined };
  } catch (err) {
    const problem = `backend "${backend.name}": link not usable: ${err instanceof Error ? err.message : String(err)}`;
    console.error(`modelguard: ${problem}`);
    return { connect: undefined, headers: {}, problem };
  }
}
