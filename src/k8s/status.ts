/**
 * Per-resource validity for the status subresource: the `Accepted` condition, True when the resource
 * is part of the compiled snapshot, False with reason Invalid and the problems (with their hints) when
 * it is not (Blocked when the resource itself is valid but others hold the set back: compilation is
 * all or nothing, so the last good snapshot stays). Issues name their resource (`App "cam" spec...`), which is how they are attributed.
 */
import { ConfigError, formatIssue } from '../config/issues.ts';
import type { ResourceDoc, ResourceProblem } from './resources.ts';

export interface AcceptedCondition {
  readonly type: 'Accepted';
  readonly status: 'True' | 'False';
  readonly reason: 'Accepted' | 'Invalid' | 'Blocked';
  readonly message: string;
}

/** Kubernetes caps condition messages at 32768 bytes; keep them readable in `kubectl describe`. */
const MAX_MESSAGE = 4096;

export function accepted(): AcceptedCondition {
  return { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'part of the current snapshot' };
}

export function invalid(message: string): AcceptedCondition {
  return { type: 'Accepted', status: 'False', reason: 'Invalid', message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message };
}

export const resourceKey = (kind: string, name: string): string => `${kind}/${name}`;

/**
 * The condition of every document after a compile: `error` is what compileResources threw (or
 * undefined). A problem that names no resource (a duplicate Gateway, say) is reported on every
 * resource, since none of them is in effect while the set is rejected.
 */
export function conditionsFor(docs: readonly ResourceDoc[], problems: readonly ResourceProblem[], error: unknown): Map<string, AcceptedCondition> {
  const messages = new Map<string, string[]>();
  const add = (key: string, text: string): void => void messages.set(key, [...(messages.get(key) ?? []), text]);
  const general: string[] = [];
  for (const p of problems) add(resourceKey(p.kind, p.name), p.hint === undefined ? p.message : `${p.message} (hint: ${p.hint})`);
  if (error instanceof ConfigError) {
    for (const issue of error.issues) {
      const m = /^(\w+) "([^"]*)"/.exec(issue.message);
      const text = formatIssue({ ...issue, file: 'spec' }).replace(/^spec: /, '');
      const doc = m === null ? undefined : docs.find((d) => d.kind === m[1] && d.metadata.name === m[2]);
      if (doc === undefined) general.push(text);
      else add(resourceKey(doc.kind, doc.metadata.name), text);
    }
  } else if (error !== undefined) {
    general.push(error instanceof Error ? error.message : JSON.stringify(error));
  }
  const out = new Map<string, AcceptedCondition>();
  for (const d of docs) {
    const key = resourceKey(d.kind, d.metadata.name);
    const own = messages.get(key);
    if (own !== undefined) out.set(key, invalid(own.join('; ')));
    else if (general.length > 0) out.set(key, invalid(`the configuration is rejected: ${general.join('; ')}`));
    else if (problems.length > 0 || error !== undefined) out.set(key, { ...invalid('valid, but not applied while other resources are invalid: the last good snapshot stays'), reason: 'Blocked' });
    else out.set(key, accepted());
  }
  return out;
}
