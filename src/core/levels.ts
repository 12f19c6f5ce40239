/**
 * Priority levels on the uplink (docs/traffic-qos.md, "Per priority level"). The kernel cannot see a
 * request's ServiceGroup, only its packets; so connections to remote endpoints are opened per level,
 * each from its own block of local ports, and a u32 filter sends each block to the level's class.
 *
 *   sourcePorts 49152-53247 (4096 ports, aligned) → 8 blocks of 512:
 *     level 0 (highest priority)  49152-49663   match ip sport 49152 0xfe00 → 4d47:11
 *     level 1                     49664-50175   match ip sport 49664 0xfe00 → 4d47:12
 *     ...                          (at most 7 levels; block 7 stays unused)
 *
 * The default range lies in the kernel's ephemeral range (32768-60999) and in IANA's dynamic range,
 * where no service listens: a port ModelGuard holds there can never keep a server from starting.
 * Pure, and in core because the compiler (config), the planner (qos) and dispatch all read the
 * same numbers from here.
 */
import type { GroupSnapshot, PriorityLevelsSnapshot } from './snapshot.ts';

/** HTB has priorities 0..7: levels take 0..n-1 and the default class n, so at most 7 levels. */
export const MAX_LEVELS = 7;
/** The range is cut into this many equal blocks, whatever the number of levels (stable ports). */
export const BLOCKS = 8;
export const DEFAULT_SOURCE_PORTS = '49152-53247';

/** A range "first-last" that splits into BLOCKS power-of-two blocks aligned to their size; else why not. */
export function parsePortRange(text: string): { first: number; size: number } | string {
  const m = /^(\d+)-(\d+)$/.exec(text.trim());
  if (m === null) return 'expected "first-last"';
  const first = Number(m[1]);
  const last = Number(m[2]);
  const size = last - first + 1;
  if (first < 1024 || last > 65535 || size <= 0) return 'ports must lie within 1024-65535, first below last';
  if (size < 256 || (size & (size - 1)) !== 0) return `the range must hold a power of two of ports, at least 256 (it holds ${size})`;
  if (first % size !== 0) return `the first port must be a multiple of the range's size ${size}, so that one mask matches each block`;
  return { first, size };
}

/**
 * The levels of a configuration: its groups' distinct priorities, highest first; beyond MAX_LEVELS
 * the lowest ones share the last level. Undefined with fewer than two levels: nothing to tell apart.
 */
export function priorityLevels(groups: Readonly<Record<string, GroupSnapshot>>, sourcePorts: string): PriorityLevelsSnapshot | undefined {
  const range = parsePortRange(sourcePorts);
  if (typeof range === 'string') return undefined; // the schema refused it already
  const byPriority = new Map<number, string[]>();
  for (const g of Object.values(groups)) byPriority.set(g.priority, [...(byPriority.get(g.priority) ?? []), g.name]);
  const priorities = [...byPriority.keys()].sort((a, b) => b - a);
  if (priorities.length < 2) return undefined;
  const levels = [];
  for (let i = 0; i < Math.min(priorities.length, MAX_LEVELS); i++) {
    const own = i === MAX_LEVELS - 1 ? priorities.slice(i) : [priorities[i] as number];
    levels.push({ priorities: own, groups: own.flatMap((p) => byPriority.get(p) ?? []).sort() });
  }
  return { firstPort: range.first, portsPerLevel: range.size / BLOCKS, levels };
}

/**
 * The level of a group priority: the one that lists it, else (a group that a reload removed while
 * its work is still out) the highest level at or below it, else the last.
 */
export function levelOf(levels: PriorityLevelsSnapshot, priority: number): number {
  const n = levels.levels.length;
  for (let i = 0; i < n; i++) {
    const ps = levels.levels[i]?.priorities ?? [];
    if (priority >= Math.min(...ps)) return i;
  }
  return n - 1;
}

/** The local ports of level `i`: a block a u32 mask matches. */
export function levelPorts(levels: Pick<PriorityLevelsSnapshot, 'firstPort' | 'portsPerLevel'>, i: number): { first: number; size: number; mask: number } {
  return { first: levels.firstPort + i * levels.portsPerLevel, size: levels.portsPerLevel, mask: 0xffff & ~(levels.portsPerLevel - 1) };
}

/** What people read in metrics and the dashboard: "priority 10", or "priority 2 and below" for a merged level. */
export function levelName(l: { readonly priorities: readonly number[] }): string {
  const top = l.priorities[0] ?? 0;
  return l.priorities.length > 1 ? `priority ${top} and below` : `priority ${top}`;
}

