/**
 * Plain values of the configuration language, with no schema library: message hints, sizes,
 * listener addresses, DNS labels and CIDRs. The zod schemas (primitives.ts) validate with these, and
 * the roles use them at run time without loading the schemas (a managed proxy or broker never does).
 */
import { isIP } from 'node:net';

/** Separates a message from its hint inside a zod issue message. */
export const HINT_SEP = ' — hint: ';

export function withHint(message: string, hint: string | undefined): string {
  return hint === undefined ? message : `${message}${HINT_SEP}${hint}`;
}

/** Short, single-line rendering of a user value for messages. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined; // bigint, cycles
  }
  const text = json ?? `a ${typeof value}`;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const SIZE_UNITS: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
const SIZE = /^(\d+)(Ki|Mi|Gi)?$/;

/** Bytes for a validated size; undefined when the value is not a size. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  const m = SIZE.exec(value);
  if (m === null) return undefined;
  const bytes = Number(m[1]) * (SIZE_UNITS[m[2] ?? ''] ?? Number.NaN);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** Whether a listener host is reachable only from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Host and port of a validated listener address; undefined when it is not one. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? { host: m[1], port } : undefined;
  const host = m[2] ?? '';
  if (/^[\d.]+$/.test(host) ? isIP(host) !== 4 : !HOSTNAME.test(host)) return undefined;
  return { host, port };
}

/** The closest DNS-1123 label to some text (lower case, runs of other characters become "-"). */
export function toDnsLabel(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
}

/** Splits a CIDR (or a bare address, one host) into address, prefix and family; undefined if invalid. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}
