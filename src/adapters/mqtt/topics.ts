/** The MQTT topic space: `<prefix>/infer/<model>` for requests. */

export function requestFilter(prefix: string): string {
  return `${prefix}/infer/+`;
}

/** The model named by a request topic, or undefined when the topic is not one. */
export function modelOfTopic(prefix: string, topic: string): string | undefined {
  const head = `${prefix}/infer/`;
  if (!topic.startsWith(head)) return undefined;
  const model = topic.slice(head.length);
  return model === '' || model.includes('/') ? undefined : model;
}

/**
 * Whether a subscription filter can match a request topic: devices on the embedded broker may not
 * read other devices' requests (they can carry API keys).
 */
export function filterReachesRequests(prefix: string, filter: string): boolean {
  const f = filter.split('/');
  const t = [...prefix.split('/'), 'infer'];
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i === t.length) return f.length === t.length + 1; // the model level: any single level matches
    if (level !== '+' && level !== t[i]) return false;
  }
  return false;
}
