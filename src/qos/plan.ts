/**
 * The planner: a QoS configuration and its matches → the tc commands that install, update and remove
 * it. Pure, so `modelguard qos plan` prints exactly what the applier runs.
 */
import { CLASS_TOP, QOS_CLASSES, QOS_HANDLE, ROOT, type LeafKind, type QosClassSpec, type QosLevel, type QosMatch, type QosPlanInput, type TcCommand } from './contract.ts';
import { tcRate } from '../core/rate.ts';

const hex = (n: number): string => n.toString(16);
export const classId = (minor: number): string => `${hex(QOS_HANDLE)}:${hex(minor)}`;
/** Leaf qdisc handles follow the root's: 4d48: inference, 4d49: default, 4d4a: and up the levels. */
const leafHandle = (i: number): string => `${hex(QOS_HANDLE + 1 + i)}:`;

/** The inference class: where the filters send matched packets. */
export const INFERENCE_CLASS = classId(0x10);
const DEFAULT_MINOR = 0x20;
/** Level i's class: 4d47:11, 4d47:12, ... (below the default class's 20). */
const levelMinor = (i: number): number => 0x11 + i;

/** Filter preferences alternate between two generations so that a reload never leaves a gap. */
export const FILTER_PREFS = [10, 20] as const;
/** A generation's level filters come before its destination filters (they match the same addresses). */
const levelPref = (pref: number): number => pref - 5;

/** Shares of the shaped rate with levels: inference (probes, answers, MQTT) 15%, the levels 60%, default 25%. */
const INFERENCE_SHARE_WITH_LEVELS = 0.15;
const LEVELS_SHARE = 0.6;

/**
 * The classes under the top class. Without levels: inference and default (QOS_CLASSES). With them,
 * level i gets HTB prio i and a guaranteed rate that halves from one level to the next; the default
 * class comes after every level. A class within its guaranteed rate is served before any class that
 * borrows, and among borrowers the lower prio goes first: a high level's calls pass a low level's
 * backlog, and a low level still gets its own share, so it never starves.
 */
export function qosClasses(levels: readonly QosLevel[]): QosClassSpec[] {
  if (levels.length === 0) {
    return QOS_CLASSES.map((c, i) => ({ ...c, groups: [], leaf: c.name === 'default' ? 'splitter' : 'inference', leafHandle: leafHandle(i) }));
  }
  const weights = levels.map((_, i) => 2 ** (levels.length - 1 - i));
  const total = weights.reduce((a, b) => a + b, 0);
  return [
    { name: 'inference', minor: 0x10, share: INFERENCE_SHARE_WITH_LEVELS, prio: 0, groups: [], leaf: 'inference', leafHandle: leafHandle(0) },
    ...levels.map((l, i): QosClassSpec => ({
      name: l.name,
      minor: levelMinor(i),
      share: (LEVELS_SHARE * (weights[i] ?? 1)) / total,
      prio: i,
      groups: l.groups,
      leaf: 'splitter',
      leafHandle: leafHandle(2 + i),
    })),
    { name: 'default', minor: DEFAULT_MINOR, share: 1 - INFERENCE_SHARE_WITH_LEVELS - LEVELS_SHARE, prio: levels.length, groups: [], leaf: 'splitter', leafHandle: leafHandle(1) },
  ];
}

/** HTB's quantum (bytes a class sends per round among equal priorities): a full frame, at most 200k. */
function quantum(bitsPerSecond: number): string {
  return String(Math.min(200_000, Math.max(1514, Math.floor(bitsPerSecond / 8 / 10))));
}

/** pfifo length: 100 ms at the shaped rate, so a bulk class cannot become a second bloated buffer. */
export function pfifoLimit(shapedBitsPerSecond: number): number {
  return Math.max(32, Math.ceil((shapedBitsPerSecond / 8) * 0.1 / 1514));
}

function topCommand(verb: 'add' | 'change', device: string, shaped: number): TcCommand {
  const rate = tcRate(shaped);
  return ['class', verb, 'dev', device, 'parent', ROOT, 'classid', CLASS_TOP, 'htb', 'rate', rate, 'ceil', rate, 'quantum', quantum(shaped)];
}

function classCommand(verb: 'add' | 'change', device: string, shaped: number, c: QosClassSpec): TcCommand {
  return [
    'class', verb, 'dev', device, 'parent', CLASS_TOP, 'classid', classId(c.minor), 'htb',
    'rate', tcRate(shaped * c.share), 'ceil', tcRate(shaped), 'prio', String(c.prio), 'quantum', quantum(shaped * c.share),
  ];
}

function classCommands(verb: 'add' | 'change', device: string, shaped: number, classes: readonly QosClassSpec[]): TcCommand[] {
  return [topCommand(verb, device, shaped), ...classes.map((c) => classCommand(verb, device, shaped, c))];
}

/** The root qdisc and its classes, without leaves or filters. */
export function structureCommands(p: Pick<QosPlanInput, 'device' | 'shapedBitsPerSecond' | 'levels'>): TcCommand[] {
  return [['qdisc', 'add', 'dev', p.device, 'root', 'handle', ROOT, 'htb', 'default', hex(DEFAULT_MINOR)], ...classCommands('add', p.device, p.shapedBitsPerSecond, qosClasses(p.levels ?? []))];
}

/** New rates for the installed classes (a reload that changed uplinkRate or shapePercent). */
export function rateCommands(p: Pick<QosPlanInput, 'device' | 'shapedBitsPerSecond' | 'levels'>): TcCommand[] {
  return classCommands('change', p.device, p.shapedBitsPerSecond, qosClasses(p.levels ?? []));
}

/**
 * From one set of classes to another (a reload that changed the priority levels), in two halves
 * around the filter swap: `before` adds the new classes with their leaves and changes the rates and
 * prios of those that stay; `after` deletes the classes that left, once no filter points at them
 * (HTB refuses to delete a class a filter still uses). Classes are matched by minor id.
 */
export function levelChangeCommands(
  p: Pick<QosPlanInput, 'device' | 'shapedBitsPerSecond' | 'mtu'>,
  leaf: LeafKind,
  from: readonly QosLevel[],
  to: readonly QosLevel[],
): { before: TcCommand[]; after: TcCommand[] } {
  const old = new Map(qosClasses(from).map((c) => [c.minor, c]));
  const next = qosClasses(to);
  const keep = new Set(next.map((c) => c.minor));
  const added = next.filter((c) => !old.has(c.minor));
  return {
    before: [
      topCommand('change', p.device, p.shapedBitsPerSecond),
      ...next.filter((c) => old.has(c.minor)).map((c) => classCommand('change', p.device, p.shapedBitsPerSecond, c)),
      ...added.map((c) => classCommand('add', p.device, p.shapedBitsPerSecond, c)),
      ...added.map((c) => leafCommand(p, leaf, c)),
    ],
    after: [...old.values()].filter((c) => !keep.has(c.minor)).map((c): TcCommand => ['class', 'del', 'dev', p.device, 'classid', classId(c.minor)]),
  };
}

/**
 * The default class's leaf: a TBF that never limits (its rate is far above the class's ceil) but cuts
 * GSO super-packets into single frames on enqueue. Without it a local bulk upload hands HTB 20-60 kB
 * packets; HTB sends each whole and then owes the link their time, so an inference packet waits
 * behind one (tens of ms at 10 Mbit/s) and the bursts build a queue in the modem after all.
 * Measured (docs/traffic-qos.md): loaded RTT through the inference class 33 ms with a pfifo leaf,
 * 0.07 ms with this one. Its burst holds two full frames, so no frame is ever too large for it.
 */
function splitterLeaf(p: Pick<QosPlanInput, 'shapedBitsPerSecond' | 'mtu'>): string[] {
  const frame = p.mtu + 18; // Ethernet header and a VLAN tag
  const burst = 2 * frame;
  const limit = Math.max(4 * burst, Math.ceil((p.shapedBitsPerSecond / 8) * 0.1)); // 100 ms at the shaped rate
  return ['tbf', 'rate', tcRate(Math.max(1e9, 2 * p.shapedBitsPerSecond)), 'burst', String(burst), 'limit', String(limit)];
}

function leafCommand(p: Pick<QosPlanInput, 'device' | 'shapedBitsPerSecond' | 'mtu'>, leaf: LeafKind, c: QosClassSpec): TcCommand {
  return [
    'qdisc', 'add', 'dev', p.device, 'parent', classId(c.minor), 'handle', c.leafHandle,
    ...(c.leaf === 'splitter' ? splitterLeaf(p) : leaf === 'fq_codel' ? ['fq_codel'] : ['pfifo', 'limit', String(pfifoLimit(p.shapedBitsPerSecond))]),
  ];
}

/**
 * The leaf qdiscs: `leaf` under the inference class, the GSO splitter under the default class and
 * under every level (a level's calls may be uploads as large as any bulk, cut the same way).
 */
export function leafCommands(p: Pick<QosPlanInput, 'device' | 'shapedBitsPerSecond' | 'mtu' | 'levels'>, leaf: LeafKind): TcCommand[] {
  return qosClasses(p.levels ?? []).map((c) => leafCommand(p, leaf, c));
}

const TCP = ['protocol', '6', '0xff'];

/**
 * The u32 keys of one match, per protocol. u32 reads ports at a fixed offset: IPv4 without options,
 * IPv6 without extension headers (what TCP uses). Listener answers may leave over either protocol.
 */
function matchRules(m: QosMatch): { protocol: 'ip' | 'ipv6'; keys: string[] }[] {
  if (m.kind === 'source-port') {
    return [
      { protocol: 'ip', keys: ['match', 'ip', ...TCP, 'match', 'ip', 'sport', String(m.port), '0xffff'] },
      { protocol: 'ipv6', keys: ['match', 'ip6', ...TCP, 'match', 'ip6', 'sport', String(m.port), '0xffff'] },
    ];
  }
  if (m.family === 4) return [{ protocol: 'ip', keys: ['match', 'ip', ...TCP, 'match', 'ip', 'dst', `${m.address}/32`, 'match', 'ip', 'dport', String(m.port), '0xffff'] }];
  return [{ protocol: 'ipv6', keys: ['match', 'ip6', ...TCP, 'match', 'ip6', 'dst', `${m.address}/128`, 'match', 'ip6', 'dport', String(m.port), '0xffff'] }];
}

/**
 * The u32 keys of a level's filter for one levelled destination: the destination as above, and the
 * source port within the level's block (one masked match, since the block is aligned to its size).
 */
function levelRules(m: QosMatch, l: QosLevel): { protocol: 'ip' | 'ipv6'; keys: string[] }[] {
  if (m.kind !== 'destination' || m.levelled !== true) return [];
  const sport = ['sport', String(l.firstPort), `0x${hex(l.mask)}`];
  return matchRules(m).map((r) => ({ protocol: r.protocol, keys: [...r.keys, 'match', r.protocol === 'ip' ? 'ip' : 'ip6', ...sport] }));
}

/**
 * The filters of one generation: level filters at `pref - 5` (IPv4) and `pref - 4` (IPv6), then the
 * inference filters at `pref` and `pref + 1` (a u32 filter list holds one protocol). A level's
 * packets match its filter first; every other packet to the same backend goes to inference.
 */
export function filterCommands(device: string, matches: readonly QosMatch[], pref: number, levels: readonly QosLevel[] = []): TcCommand[] {
  const filter = (protocol: 'ip' | 'ipv6', p: number, keys: string[], flowid: string): TcCommand => [
    'filter', 'add', 'dev', device, 'parent', ROOT, 'protocol', protocol, 'pref', String(protocol === 'ip' ? p : p + 1), 'u32', ...keys, 'flowid', flowid,
  ];
  return [
    ...levels.flatMap((l, i) => matches.flatMap((m) => levelRules(m, l).map((r) => filter(r.protocol, levelPref(pref), r.keys, classId(levelMinor(i)))))),
    ...matches.flatMap((m) => matchRules(m).map((r) => filter(r.protocol, pref, r.keys, INFERENCE_CLASS))),
  ];
}

/** Removes one generation of filters (both protocols, levels too), leaving the other in place. */
export function deleteFilterCommands(device: string, matches: readonly QosMatch[], pref: number, levels: readonly QosLevel[] = []): TcCommand[] {
  const del = (protocol: 'ip' | 'ipv6', p: number): TcCommand => ['filter', 'del', 'dev', device, 'parent', ROOT, 'protocol', protocol, 'pref', String(protocol === 'ip' ? p : p + 1)];
  const protocols = new Set(matches.flatMap((m) => matchRules(m).map((r) => r.protocol)));
  const levelled = new Set(levels.length === 0 ? [] : matches.flatMap((m) => levelRules(m, levels[0] as QosLevel).map((r) => r.protocol)));
  return [
    ...(['ip', 'ipv6'] as const).filter((p) => levelled.has(p)).map((p) => del(p, levelPref(pref))),
    ...(['ip', 'ipv6'] as const).filter((p) => protocols.has(p)).map((p) => del(p, pref)),
  ];
}

/** Everything ModelGuard installed goes with its root qdisc; the kernel puts its default back. */
export function removeCommands(device: string): TcCommand[] {
  return [['qdisc', 'del', 'dev', device, 'root', 'handle', ROOT]];
}

/** The whole installation, as an administrator would type it. */
export function installCommands(p: QosPlanInput): TcCommand[] {
  return [...structureCommands(p), ...leafCommands(p, p.leaf), ...filterCommands(p.device, p.matches, FILTER_PREFS[0], p.levels ?? [])];
}
