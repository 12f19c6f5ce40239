/**
 * Settings a running process reads once, at start: the listeners it bound, its MQTT connection or
 * embedded broker, and where audit goes. A reload swaps everything else in place; for these it can
 * only say that a restart is needed (a log line at reload, `restartRequired` in /api/v1/status).
 */
import type { GatewaySnapshot } from '../core/snapshot.ts';

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The fields of `now` that differ from what the process started with, as `Gateway.spec.…` paths. */
export function restartRequired(started: GatewaySnapshot, now: GatewaySnapshot): string[] {
  const out: string[] = [];
  for (const l of ['http', 'grpc', 'admin', 'broker'] as const) {
    if (started.listeners[l] !== now.listeners[l]) out.push(`Gateway.spec.listeners.${l}`);
  }
  if (!same(started.mqtt, now.mqtt)) out.push('Gateway.spec.mqtt');
  if (!same(started.audit, now.audit)) out.push('Gateway.spec.audit');
  return out;
}

/** The reload's log line when it changes start-only settings, else undefined. */
export function restartNote(before: GatewaySnapshot, next: GatewaySnapshot, version: number, command: string): string | undefined {
  const changed = restartRequired(before, next);
  if (changed.length === 0) return undefined;
  return `configuration version ${version} changes ${changed.join(', ')}, read only at start: restart \`${command}\` to apply ${changed.length > 1 ? 'them' : 'it'} (everything else is applied now; /api/v1/status lists restartRequired)`;
}
