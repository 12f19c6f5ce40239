/**
 * Value types of the configuration language (durations, sizes, addresses, names, URLs, key hashes)
 * as zod schemas. Each validator returns a message with an optional hint after HINT_SEP; the loader
 * splits the two, so one string carries both through zod's issue without a side channel.
 * Validated values stay as written (`"2s"`, `"8Mi"`): compile.ts converts them, which keeps a
 * validated resource valid input again (reloads and the admin API can round-trip resources).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from '../core/duration.ts';
import { parseCidr, parseSize, show, splitHostPort, toDnsLabel, withHint } from './values.ts';

/** A zod schema of type T whose failure message is computed from the offending input. */
function checked<T>(problem: (value: unknown) => string | undefined): z.ZodCustom<T, T> {
  return z.custom<T>((value) => value !== undefined && problem(value) === undefined, {
    error: (issue) => (issue.input === undefined ? 'is required' : (problem(issue.input) ?? 'invalid value')),
  });
}

// ---- durations: "250ms", "2s", "1m", "1h"; a unit is required ----

const DURATION = /^\d+(?:\.\d+)?(?:ms|s|m|h)$/;
const UNIT_ALIASES: Record<string, string> = {
  ms: 'ms', msec: 'ms', msecs: 'ms', millis: 'ms', millisecond: 'ms', milliseconds: 'ms',
  s: 's', sec: 's', secs: 's', second: 's', seconds: 's',
  m: 'm', min: 'm', mins: 'm', minute: 'm', minutes: 'm',
  h: 'h', hr: 'h', hrs: 'h', hour: 'h', hours: 'h',
};

function durationProblem(value: unknown): string | undefined {
  const expected = 'expected a duration like "250ms", "2s" or "1m"';
  if (typeof value === 'number' || (typeof value === 'string' && /^\s*\d+(?:\.\d+)?\s*$/.test(value))) {
    const n = String(value).trim();
    return withHint(`${expected}, got ${show(value)}`, `add a unit: "${n}s" (seconds) or "${n}ms" (milliseconds)`);
  }
  if (typeof value !== 'string') return `${expected}, got ${show(value)}`;
  if (!DURATION.test(value)) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/.exec(value);
    const unit = m?.[2] === undefined ? undefined : UNIT_ALIASES[m[2].toLowerCase()];
    const hint = m !== null && unit !== undefined ? `write "${m[1]}${unit}"` : 'units are ms, s, m and h, with no space';
    return withHint(`${expected}, got ${show(value)}`, hint);
  }
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) return withHint(`${expected}, got ${show(value)}`, 'a duration must be greater than 0');
  return undefined;
}

/** A positive duration string with a unit. */
export function duration(): z.ZodCustom<string, string> {
  return checked<string>(durationProblem);
}

// ---- sizes: integer bytes, or an integer with a binary suffix Ki, Mi, Gi ----

function sizeProblem(value: unknown): string | undefined {
  if ((typeof value === 'number' || typeof value === 'string') && parseSize(value) !== undefined) return undefined;
  const expected = `expected a size (bytes, or a whole number with Ki, Mi or Gi), got ${show(value)}`;
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG])(?:i?[bB]?)?\s*$/.exec(value);
    if (m?.[1] !== undefined && m[2] !== undefined) {
      const unit = `${m[2].toUpperCase()}i`;
      const n = Number(m[1]);
      if (Number.isInteger(n)) return withHint(expected, `write "${n}${unit}" (binary units: 1Ki = 1024 bytes)`);
      const lower = unit === 'Ki' ? '' : unit === 'Mi' ? 'Ki' : 'Mi';
      return withHint(expected, `sizes are whole numbers: write "${Math.round(n * 1024)}${lower}"`);
    }
  }
  return withHint(expected, 'for example 1048576, "512Ki", "8Mi" or "1Gi"');
}

/** A positive size: an integer number of bytes, or a string like "512Ki", "8Mi", "1Gi". */
export function size(): z.ZodCustom<string | number, string | number> {
  return checked<string | number>(sizeProblem);
}

// ---- listener addresses: host:port, IPv6 in brackets ----

function hostPortProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && splitHostPort(value) !== undefined) return undefined;
  const expected = `expected "host:port" (IPv6 as "[::1]:port"), got ${show(value)}`;
  const port = typeof value === 'number' ? String(value) : typeof value === 'string' ? /^:?(\d+)$/.exec(value)?.[1] : undefined;
  if (port !== undefined) return withHint(expected, `write "0.0.0.0:${port}" (all interfaces) or "127.0.0.1:${port}" (this machine only)`);
  if (typeof value === 'string') {
    const m = /^\[?([^\]]*:[^\]]*)\]?:(\d+)$/.exec(value);
    if (m !== null && isIP(m[1] ?? '') === 6 && !value.startsWith('[')) return withHint(expected, `put IPv6 addresses in brackets: "[${m[1]}]:${m[2]}"`);
    const p = /:(\d+)$/.exec(value)?.[1];
    if (p !== undefined && Number(p) > 65535) return withHint(expected, 'ports are 0..65535');
  }
  return expected;
}

/** A listener address "host:port" (port 0..65535, 0 = any free port). */
export function hostPort(): z.ZodCustom<string, string> {
  return checked<string>(hostPortProblem);
}

// ---- URLs ----

function urlProblem(value: unknown, protocols: readonly string[], example: string): string | undefined {
  const expected = `expected a ${protocols.map((p) => p.slice(0, -1)).join('/')} URL, got ${show(value)}`;
  if (typeof value !== 'string') return expected;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return withHint(expected, /^[\w.-]+(:\d+)?(\/.*)?$/.test(value) ? `add the scheme: "${example}${value}"` : `for example "${example}127.0.0.1:8000"`);
  }
  if (!protocols.includes(url.protocol)) {
    if (/^[\w.-]+$/.test(url.protocol.slice(0, -1)) && /^\d+$/.test(url.pathname)) {
      return withHint(expected, `add the scheme: "${example}${value}"`);
    }
    return withHint(expected, `the scheme must be one of ${protocols.map((p) => `${p}//`).join(', ')}`);
  }
  if (url.hostname === '') return withHint(expected, 'the URL needs a host');
  if (url.search !== '' || url.hash !== '') return withHint(expected, 'remove the query string and fragment: this is a base URL');
  return undefined;
}

/** An http:// or https:// base URL. */
export function httpUrl(): z.ZodCustom<string, string> {
  return checked<string>((v) => urlProblem(v, ['http:', 'https:'], 'http://'));
}

/** An MQTT broker URL: mqtt://, mqtts://, ws:// or wss://. */
export function mqttUrl(): z.ZodCustom<string, string> {
  return checked<string>((v) => urlProblem(v, ['mqtt:', 'mqtts:', 'ws:', 'wss:'], 'mqtt://'));
}

// ---- names and references ----

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;

function nameProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length <= 63 && DNS_LABEL.test(value)) return undefined;
  const expected = `expected a name of lower-case letters, digits and "-" (at most 63, starting and ending with a letter or digit), got ${show(value)}`;
  const suggestion = typeof value === 'string' ? toDnsLabel(value) : '';
  return withHint(expected, suggestion === '' ? 'names follow DNS-1123 label rules, like "camera-line-1"' : `for example "${suggestion}"`);
}

/** A resource name or a reference to one (DNS-1123 label). */
export function dnsName(): z.ZodCustom<string, string> {
  return checked<string>(nameProblem);
}

// ---- API key digests ----

function sha256Problem(value: unknown): string | undefined {
  if (typeof value === 'string' && /^[0-9a-fA-F]{64}$/.test(value)) return undefined;
  const what = typeof value === 'string' ? `a ${value.length}-character value` : show(value);
  return withHint(
    `expected the hex sha256 of an API key (64 hex digits), got ${what}`,
    'store the digest, never the key: `modelguard keys create --app NAME` prints both, or `printf %s "$KEY" | sha256sum`',
  );
}

/** A sha256 digest in hex (either case), normalised to lower case. */
export function sha256Hex(): z.ZodPipe<z.ZodCustom<string, string>, z.ZodTransform<string, string>> {
  return checked<string>(sha256Problem).transform((s) => s.toLowerCase());
}

// ---- source addresses: "10.0.0.0/8", "192.168.1.7", "fd00::/8" ----

function cidrProblem(value: unknown): string | undefined {
  if (typeof value === 'string' && parseCidr(value) !== undefined) return undefined;
  return withHint(`expected an IPv4 or IPv6 address or CIDR, got ${show(value)}`, 'for example "10.0.0.0/8", "192.168.1.7" or "fd00::/8"');
}

/** A source address range. */
export function cidr(): z.ZodCustom<string, string> {
  return checked<string>(cidrProblem);
}
