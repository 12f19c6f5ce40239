/**
 * The parts of undici ModelGuard uses (pools and agents, their `request`, its errors), loaded from
 * their own files. undici's index loads every other part too (fetch, WebSocket, EventSource, the
 * cache, the mock agent): about 9 MiB more resident memory in every role, for nothing we call.
 * The index also gives every dispatcher its `request` method; that is done here the same way.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export type Pool = Undici.Pool;
export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;
export const errors = require('undici/lib/core/errors.js') as typeof Undici.errors;
export type { buildConnector, Dispatcher } from 'undici';

/** A request to a full URL through `dispatcher` (undici's top-level `request`, without its global agent). */
export function requestUrl(dispatcher: Undici.Dispatcher, url: string | URL, opts: Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path'>): Promise<Undici.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  return dispatcher.request({ ...opts, origin: u.origin, path: `${u.pathname}${u.search}` } as Undici.Dispatcher.RequestOptions);
}
