import type { GatewaySnapshot } from '../core/snapshot.ts';
import { DEFAULTS } from '../config/defaults.ts';

/**
 * The admin listener of a role: the configured one, else the role's own default port (so the
 * controller, a broker and a proxy run on one box without a flag; none takes Prometheus's 9090).
 */
export function adminAddress(g: GatewaySnapshot, role: keyof typeof DEFAULTS.gateway.adminByRole): string {
  if (g.listenersGiven === undefined || g.listenersGiven.includes('admin')) return g.listeners.admin;
  return DEFAULTS.gateway.adminByRole[role];
}
