/**
 * The applier: keeps the uplink's traffic control in step with the configuration. It installs the
 * planned qdisc, classes and filters at start, moves the filters on a reload (new generation first,
 * then the old one removed, so no packet goes unclassified), and on stop removes its root qdisc and
 * with it everything it installed, which gives the device back its kernel default.
 *
 * It never touches what it did not install: a device whose root qdisc is someone else's is left
 * alone and QoS stays off, with a message saying so. A root qdisc with ModelGuard's handle is one
 * an earlier run left behind (a crash) and is replaced.
 */
import type { Snapshot, TrafficQosSnapshot } from '../core/snapshot.ts';
import type { LeafKind, QosClassCounters, QosLevel, QosMatch, QosStatus, TcRunner } from './contract.ts';
import { qosLevels } from './levels.ts';
import { FILTER_PREFS, deleteFilterCommands, filterCommands, leafCommands, levelChangeCommands, qosClasses, rateCommands, removeCommands, structureCommands } from './plan.ts';
import { showRate } from '../core/rate.ts';
import { qosMatches, type ListenerPorts, type Resolver } from './targets.ts';
import { TcCli, hasNetAdmin, interfaceMtu, isKernelDefault, isOurs, parseClassCounters, rootQdisc } from './tc.ts';

export interface TrafficQosOptions {
  /** Ports the inference listeners are bound to. */
  readonly ports: ListenerPorts;
  /** Where QoS says what it did (default: stderr). */
  readonly log?: (line: string) => void;
  readonly tc?: TcRunner;
  /** Whether the process may change traffic control (default: CAP_NET_ADMIN from /proc/self/status). */
  readonly canAdmin?: () => boolean;
  readonly resolve?: Resolver;
  /** Leaf queue to try first (default fq_codel, falling back to pfifo where the kernel lacks it). */
  readonly leaf?: LeafKind;
  /** The interface's MTU (default: /sys/class/net/<interface>/mtu, else 1500). */
  readonly mtu?: (device: string) => number;
  /** How long counters read from the kernel are reused, ms (default 1000). */
  readonly countersMaxAgeMs?: number;
}

interface Installed {
  readonly device: string;
  readonly shaped: number;
  readonly leaf: LeafKind;
  readonly matches: readonly QosMatch[];
  /** Per-priority classes (empty without them). */
  readonly levels: readonly QosLevel[];
  readonly mtu: number;
  readonly pref: number;
}

export const shapedRate = (q: TrafficQosSnapshot): number => Math.floor((q.uplinkBitsPerSecond * q.shapePercent) / 100);

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class TrafficQos {
  private readonly tc: TcRunner;
  private readonly log: (line: string) => void;
  private installed: Installed | undefined;
  private reason: string | undefined;
  private configured: TrafficQosSnapshot | undefined;
  /** Reconfigurations run one after another, in the order they were asked for. */
  private chain: Promise<void> = Promise.resolve();
  private counterCache: { at: number; value: Promise<QosClassCounters[]> } | undefined;

  constructor(private readonly opts: TrafficQosOptions) {
    this.tc = opts.tc ?? new TcCli();
    this.log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  /** Applies a configuration (start and every reload); resolves when the kernel has it. Never rejects. */
  apply(s: Snapshot): Promise<void> {
    const next = this.chain.then(() => this.reconcile(s));
    this.chain = next;
    return next;
  }

  /** Removes what ModelGuard installed. Never rejects. */
  stop(): Promise<void> {
    const next = this.chain.then(() => this.uninstall('ModelGuard stopped'));
    this.chain = next;
    return next;
  }

  status(): QosStatus {
    const i = this.installed;
    return {
      state: i !== undefined ? 'active' : this.configured === undefined ? 'off' : 'inactive',
      device: i?.device ?? this.configured?.interface,
      shapedBitsPerSecond: i?.shaped ?? (this.configured ? shapedRate(this.configured) : undefined),
      leaf: i?.leaf,
      matches: i?.matches ?? [],
      levels: i?.levels ?? [],
      reason: i === undefined ? this.reason : undefined,
    };
  }

  /** The kernel's counters of the installed classes (empty when nothing is installed). */
  counters(): Promise<QosClassCounters[]> {
    const i = this.installed;
    if (i === undefined) return Promise.resolve([]);
    const now = performance.now();
    if (this.counterCache === undefined || now - this.counterCache.at > (this.opts.countersMaxAgeMs ?? 1000)) {
      const classes = qosClasses(i.levels);
      const value = this.tc.run(['-s', 'class', 'show', 'dev', i.device]).then((text) => parseClassCounters(text, classes), () => []);
      this.counterCache = { at: now, value };
    }
    return this.counterCache.value;
  }

  private async reconcile(s: Snapshot): Promise<void> {
    const want = s.gateway.trafficQoS;
    this.configured = want;
    try {
      if (want === undefined) return await this.uninstall('trafficQoS removed from the configuration');
      if ((this.opts.canAdmin ?? hasNetAdmin)()) {
        const matches = await qosMatches(s, this.opts.ports, this.opts.resolve);
        const levels = qosLevels(want.priorityLevels);
        const i = this.installed;
        if (i !== undefined && i.device !== want.interface) await this.uninstall(`trafficQoS moved to ${want.interface}`);
        if (this.installed === undefined) await this.install(want, matches, levels);
        else await this.update(this.installed, want, matches, levels);
        return;
      }
      this.inactive(
        `traffic QoS is off: this process lacks CAP_NET_ADMIN, so it cannot shape ${want.interface}. ` +
          'Grant it (container: capabilities add NET_ADMIN, with the host network), or have an administrator apply ' +
          'the commands `modelguard qos plan --config PATH` prints.',
      );
    } catch (err) {
      this.inactive(`traffic QoS is off: ${(err as Error).message}`);
    }
  }

  private inactive(reason: string): void {
    if (reason !== this.reason) this.log(reason);
    this.reason = reason;
  }

  private async install(want: TrafficQosSnapshot, matches: readonly QosMatch[], levels: readonly QosLevel[]): Promise<void> {
    const device = want.interface;
    let before;
    try {
      before = await rootQdisc(this.tc, device);
    } catch (err) {
      throw new Error(`cannot read the qdiscs of ${device} (${(err as Error).message.split('\n')[0] ?? ''}); is the interface name right?`);
    }
    if (isOurs(before)) {
      this.log(`traffic QoS: ${device} has a ModelGuard qdisc left by an earlier run; replacing it`);
      await this.tc.batch(removeCommands(device));
    } else if (!isKernelDefault(before)) {
      throw new Error(
        `${device} already has a root qdisc (${before?.kind ?? '?'} ${before?.handle ?? '?'}) that ModelGuard did not install; it is left as it is. ` +
          `Remove it (tc qdisc del dev ${device} root) if nothing needs it, or merge the commands of \`modelguard qos plan\` into it.`,
      );
    }
    const shaped = shapedRate(want);
    const mtu = (this.opts.mtu ?? interfaceMtu)(device);
    const plan = { device, shapedBitsPerSecond: shaped, mtu, levels };
    const pref = FILTER_PREFS[0];
    try {
      await this.tc.batch(structureCommands(plan));
      const leaf = await this.addLeaves(plan);
      await this.tc.batch(filterCommands(device, matches, pref, levels));
      this.installed = { device, shaped, leaf, matches, levels, mtu, pref };
      this.reason = undefined;
      this.counterCache = undefined;
      this.log(
        `traffic QoS: ${device} shaped to ${showRate(shaped)} (${want.shapePercent}% of ${showRate(want.uplinkBitsPerSecond)}); ` +
          `inference class (${leaf}) ahead of default; ${describe(matches)}${describeLevels(levels)}`,
      );
    } catch (err) {
      // Take back the part that was installed, so a failure leaves the device as it was.
      await this.tc.batch(removeCommands(device)).catch(() => undefined);
      throw err;
    }
  }

  private async addLeaves(plan: { device: string; shapedBitsPerSecond: number; mtu: number; levels: readonly QosLevel[] }): Promise<LeafKind> {
    const first = this.opts.leaf ?? 'fq_codel';
    try {
      await this.tc.batch(leafCommands(plan, first));
      return first;
    } catch (err) {
      if (first === 'pfifo') throw err;
      await this.tc.batch(leafCommands(plan, 'pfifo')); // the kernel has no fq_codel
      return 'pfifo';
    }
  }

  private async update(i: Installed, want: TrafficQosSnapshot, matches: readonly QosMatch[], levels: readonly QosLevel[]): Promise<void> {
    let next = i;
    const shaped = shapedRate(want);
    const levelsChanged = !same(levels, i.levels);
    const plan = { device: i.device, shapedBitsPerSecond: shaped, mtu: i.mtu };
    // Classes of a new level (and new rates, prios) come before the filters that point at them.
    const change = levelsChanged ? levelChangeCommands(plan, i.leaf, i.levels, levels) : undefined;
    if (change !== undefined) await this.tc.batch(change.before);
    else if (shaped !== i.shaped) await this.tc.batch(rateCommands({ ...plan, levels }));
    if (shaped !== i.shaped) {
      next = { ...next, shaped };
      this.log(`traffic QoS: ${i.device} now shaped to ${showRate(shaped)}`);
    }
    if (levelsChanged || !same(matches, i.matches)) {
      const pref = i.pref === FILTER_PREFS[0] ? FILTER_PREFS[1] : FILTER_PREFS[0];
      await this.tc.batch(filterCommands(i.device, matches, pref, levels));
      await this.tc.batch(deleteFilterCommands(i.device, i.matches, i.pref, i.levels));
      next = { ...next, matches, levels, pref };
    }
    // Classes of a level that left go once no filter points at them.
    if (change !== undefined && change.after.length > 0) await this.tc.batch(change.after);
    if (next.pref !== i.pref) this.log(`traffic QoS: filters on ${i.device} updated; ${describe(matches)}${describeLevels(levels)}`);
    this.counterCache = undefined;
    this.installed = next;
  }

  private async uninstall(why: string): Promise<void> {
    const i = this.installed;
    if (i === undefined) return;
    this.installed = undefined;
    this.counterCache = undefined;
    try {
      // Only our own root goes: if someone replaced it meanwhile, theirs stays.
      if (isOurs(await rootQdisc(this.tc, i.device))) await this.tc.batch(removeCommands(i.device));
      this.log(`traffic QoS: removed from ${i.device} (${why}); its default qdisc is back`);
    } catch (err) {
      this.log(`traffic QoS: could not remove its qdisc from ${i.device}: ${(err as Error).message}`);
    }
  }
}

function describe(matches: readonly QosMatch[]): string {
  if (matches.length === 0) return 'no inference traffic crosses it yet (no remote backend, no listener beyond loopback)';
  const parts = matches.map((m) => (m.kind === 'source-port' ? `from port ${m.port}` : `to ${m.family === 6 ? `[${m.address}]` : m.address}:${m.port}`));
  return `inference = ${parts.join(', ')}`;
}

function describeLevels(levels: readonly QosLevel[]): string {
  if (levels.length === 0) return '';
  const parts = levels.map((l, i) => `4d47:${(0x11 + i).toString(16)} ${l.name} (${l.groups.join(', ')}) from ports ${l.firstPort}-${l.lastPort}`);
  return `; per priority level: ${parts.join(', ')}`;
}
