/**
 * The planner's view of the priority levels (src/core/levels.ts has the levels themselves: which
 * groups, which ports).
 */
import type { PriorityLevelsSnapshot } from '../core/snapshot.ts';
import { levelName, levelPorts } from '../core/levels.ts';
import type { QosLevel } from './contract.ts';

/** The planner's view of the levels (none when per-priority classes are off). */
export function qosLevels(levels: PriorityLevelsSnapshot | undefined): QosLevel[] {
  if (levels === undefined) return [];
  return levels.levels.map((l, i) => {
    const ports = levelPorts(levels, i);
    return { name: levelName(l), groups: l.groups, firstPort: ports.first, mask: ports.mask, lastPort: ports.first + ports.size - 1 };
  });
}
