/**
 * The MQTT topic space under the prefix (`modelguard/v1` by default):
 *
 *   <prefix>/infer/<model>            requests: written by devices, read by ModelGuard only
 *   <prefix>/<app>/replies[/<anything>] replies to <app>: written by ModelGuard only, read by <app>
 *
 * Everything else under the prefix is reserved (nobody reads or writes it). Topics outside the
 * prefix are the broker's business: on the embedded broker ModelGuard sends only errors there.
 */

export function requestFilter(prefix: string): string {
  return `${prefix}/infer/+`;
}

/** The reply topic root of an app (`<prefix>/<app>/replies`); devices subscribe to `<root>/#`. */
export function replyRoot(prefix: string, app: string): string {
  return `${prefix}/${app}/replies`;
}

/** Whether `topic` is a request topic (`<prefix>/infer/<one level>`, the level possibly empty). */
export function isRequestTopic(prefix: string, topic: string): boolean {
  const head = `${prefix}/infer/`;
  return topic.startsWith(head) && !topic.includes('/', head.length);
}

/** The model named by a request topic, or undefined when the topic is not one (or names none). */
export function modelOfTopic(prefix: string, topic: string): string | undefined {
  if (!isRequestTopic(prefix, topic)) return undefined;
  const model = topic.slice(prefix.length + '/infer/'.length);
  return model === '' ? undefined : model;
}

/** Who a topic belongs to, as the ACLs of both brokers see it. */
export type TopicOwner =
  | { readonly kind: 'outside' }
  | { readonly kind: 'requests' }
  | { readonly kind: 'replies'; readonly app: string }
  | { readonly kind: 'reserved' };

export function topicOwner(prefix: string, topic: string): TopicOwner {
  if (topic !== prefix && !topic.startsWith(`${prefix}/`)) return { kind: 'outside' };
  if (isRequestTopic(prefix, topic)) return { kind: 'requests' };
  const rest = topic.slice(prefix.length + 1).split('/');
  if (rest.length >= 2 && rest[1] === 'replies' && rest[0] !== '') return { kind: 'replies', app: rest[0] as string };
  return { kind: 'reserved' };
}

/** A shared subscription's topic filter (`$share/<group>/<filter>`) reaches what its filter does. */
function plainFilter(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const i = filter.indexOf('/', '$share/'.length);
  return i < 0 ? '' : filter.slice(i + 1);
}

/**
 * Whether a subscription filter can match a request topic: devices may not read other devices'
 * requests (they carry API keys). `#` matches its parent level too (MQTT 3.1.1 §4.7.1.2), so
 * `<prefix>/infer/#` reaches `<prefix>/infer/x` as `<prefix>/#` does; `+` matches an empty level.
 */
export function filterReachesRequests(prefix: string, filter: string): boolean {
  const f = plainFilter(filter).split('/');
  const t = [...prefix.split('/'), 'infer'];
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    // The model level: any single level is a request topic, and so is `<model>/#` (# matches its parent).
    if (i === t.length) return f.length === t.length + 1 || (f.length === t.length + 2 && f[t.length + 1] === '#');
    if (level !== '+' && level !== t[i]) return false;
  }
  return false;
}

/**
 * Whether a device logged in as `app` (undefined: anonymous) may subscribe to `filter`: nothing
 * that reaches the request topics, and under the prefix only its own app's subtree
 * (`<prefix>/<app>/...`). A filter whose first levels cannot match the prefix is outside and free.
 */
export function mayRead(prefix: string, filter: string, app: string | undefined): boolean {
  if (filterReachesRequests(prefix, filter)) return false;
  const f = plainFilter(filter).split('/');
  const p = prefix.split('/');
  for (let i = 0; i < p.length; i++) {
    const level = f[i];
    if (level === undefined) return true; // shorter than the prefix: cannot reach below it
    if (level === '#') return false; // reaches the whole prefix subtree
    if (level !== '+' && level !== p[i]) return true; // cannot match the prefix: outside
  }
  const owner = f[p.length];
  if (owner === undefined) return true; // the bare prefix topic: nothing is published there
  return app !== undefined && owner === app;
}
