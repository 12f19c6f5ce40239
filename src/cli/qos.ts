/**
 * `modelguard qos plan --config PATH`: the tc commands that `Gateway.spec.trafficQoS` installs, for an
 * administrator to apply where ModelGuard runs without CAP_NET_ADMIN. The same planner as the applier.
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { Command, Option } from 'commander';
import { loadConfig } from '../config/index.ts';
import type { LeafKind } from '../qos/contract.ts';
import { shapedRate } from '../qos/applier.ts';
import { FILTER_PREFS, installCommands, removeCommands } from '../qos/plan.ts';
import { qosLevels } from '../qos/levels.ts';
import { showRate } from '../core/rate.ts';
import { configuredPorts, qosMatches } from '../qos/targets.ts';
import { interfaceMtu } from '../qos/tc.ts';

/** Whether this machine's kernel appears to have fq_codel (a module on disk, loaded, or built in). */
export function kernelHasFqCodel(): boolean {
  if (existsSync('/sys/module/sch_fq_codel')) return true;
  for (const f of ['modules.builtin', 'modules.dep']) {
    try {
      if (readFileSync(`/lib/modules/${release()}/${f}`, 'utf8').includes('sch_fq_codel')) return true;
    } catch {
      // not there
    }
  }
  return false;
}

export async function qosPlan(config: string, leafOption: 'auto' | LeafKind): Promise<string> {
  const s = (await loadConfig(config)).snapshot;
  const q = s.gateway.trafficQoS;
  if (q === undefined) throw new Error(`${config} has no Gateway.spec.trafficQoS, so there is nothing to plan; add trafficQoS: { interface: eth0, uplinkRate: 10Mbit }`);
  const leaf: LeafKind = leafOption === 'auto' ? (kernelHasFqCodel() ? 'fq_codel' : 'pfifo') : leafOption;
  const matches = await qosMatches(s, configuredPorts(s));
  const levels = qosLevels(q.priorityLevels);
  const shaped = shapedRate(q);
  const mtu = interfaceMtu(q.interface);
  const lines = [
    `# traffic QoS for ${q.interface}: shaped to ${showRate(shaped)} (${q.shapePercent}% of ${showRate(q.uplinkBitsPerSecond)}), ${leaf} under inference`,
    '# class 4d47:10 inference (ahead), 4d47:20 everything else; both may use the whole shaped rate when the other is idle',
    ...matches.map((m) => `#   inference: ${m.kind === 'source-port' ? `from port ${m.port}` : `to ${m.address} port ${m.port}`} (${m.why})`),
    ...levels.map((l, i) => `# class 4d47:${(0x11 + i).toString(16)} ${l.name} (groups ${l.groups.join(', ')}): calls to the backends above from local ports ${l.firstPort}-${l.lastPort} (sport ${l.firstPort} mask 0x${l.mask.toString(16)}), HTB prio ${i}`),
    ...(matches.length === 0 ? ['#   no inference traffic crosses the uplink: every backend and listener is on loopback'] : []),
    `# filters use pref ${FILTER_PREFS[0]} (IPv4) and ${FILTER_PREFS[0] + 1} (IPv6)${levels.length > 0 ? `, the levels' ${FILTER_PREFS[0] - 5} and ${FILTER_PREFS[0] - 4}` : ''}; run as root, or with CAP_NET_ADMIN`,
    `# MTU ${mtu} (this machine's ${q.interface}, or 1500 when it has none): sizes the default class's GSO splitter`,
    ...installCommands({ device: q.interface, shapedBitsPerSecond: shaped, mtu, leaf, matches, levels }).map((c) => `tc ${c.join(' ')}`),
    '# check it:   tc -s class show dev ' + q.interface,
    `# remove it:  ${removeCommands(q.interface).map((c) => `tc ${c.join(' ')}`).join('; ')}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function qosCommand(fail: (err: unknown) => never): Command {
  const qos = new Command('qos').description('traffic QoS on the uplink (Gateway.spec.trafficQoS)');
  qos
    .command('plan')
    .description('print the tc commands trafficQoS installs, for an administrator to apply')
    .requiredOption('-c, --config <path>', 'configuration file or directory')
    .addOption(new Option('--leaf <kind>', 'leaf queue of each class (auto: fq_codel when this kernel has it, else pfifo)').choices(['auto', 'fq_codel', 'pfifo']).default('auto'))
    .action(async (o: { config: string; leaf: 'auto' | LeafKind }) => {
      try {
        process.stdout.write(await qosPlan(o.config, o.leaf));
      } catch (err) {
        fail(err);
      }
    });
  return qos;
}
