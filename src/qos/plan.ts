/**
 * The planner: a QoS configuration and its matches → the tc commands that install, update and remove
 * it. Pure, so `modelguard qos plan` prints exactly what the applier runs.
 */
import { CLASS_TOP, QOS_CLASSES, QOS_HANDLE, ROOT, type LeafKind, type QosMatch, type QosPlanInput, type TcCommand } from './contract.ts';
import { tcRate } from '../core/rate.ts';

const hex = (n: number): string => n.toString(16);
const classId = (minor: number): string => `${hex(QOS_HANDLE)}:${hex(minor)}`;
/** Leaf qdisc handles follow the root's: 4d48:, 4d49:, ... */
const leafHandle = (i: number): string => `${hex(QOS_HANDLE + 1 + i)}:`;

/** The inference class: where the filters send matched packets. */
export const INFERENCE_CLASS = classId(0x10);

/** Filter preferences alternate between two generations so that a reload never leaves a gap. */
export const FILTER_PREFS = [10, 20] as const;

/** HTB's quantum (bytes a class sends per round among equal priorities): a full frame, at most 200k. */
function quantum(bitsPerSecond: number): string {
  return String(Math.min(200_000, Math.max(1514, Math.floor(bitsPerSecond / 8 / 10))));
}

/** pfifo length: 100 ms at the shaped rate, so a bulk class cannot become a second bloated buffer. */
export function pfifoLimit(shapedBitsPerSecond: number): number {
  return Math.max(32, Math.ceil((shapedBitsPerSecond / 8) * 0.1 / 1514));
}

function classCommands(verb: 'add' | 'change', device: string, shaped: number): TcCommand[] {
  const rate = tcRate(shaped);
  return [
    ['class', verb, 'dev', device, 'parent', ROOT, 'classid', CLASS_TOP, 'htb', 'rate', rate, 'ceil', rate, 'quantum', quantum(shaped)],
    ...QOS_CLASSES.map((c): TcCommand => [
      'class', verb, 'dev', device, 'parent', CLASS_TOP, 'classid', classId(c.minor), 'htb',
      'rate', tcRate(shaped * c.share), 'ceil', rate, 'prio', String(c.prio), 'quantum', quantum(shaped * c.share),
    ]),
  ];
}

/** The root qdisc and its classes, without leaves or filters. */
export function structureCommands(p: Pick<QosPlanInput, 'device' | 'shapedBitsPerSecond'>): TcCommand[] {
  const defaultMinor = QOS_CLASSES.find((c) => c.name === 'default')?.minor ?? 0x20;
  return [['qdisc', 'add', 'dev', p.device, 'root', 'handle', ROOT, 'htb', 'default', hex(defaultMinor)], ...classCommands('add', p.device, p.shapedBitsPerSecond)];
}

/** New rates for the installed classes (a reload that changed uplinkRate or shapePercent). */
export function rateCommands(p: Pick<QosPlanInput, 'device' | 'shapedBitsPerSecond'>): TcCommand[] {
  return classCommands('change', p.device, p.shapedBitsPerSecond);
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

/** The leaf qdiscs: `leaf` under the inference class, the GSO splitter under the default class. */
export function leafCommands(p: Pick<QosPlanInput, 'device' | 'shapedBitsPerSecond' | 'mtu'>, leaf: LeafKind): TcCommand[] {
  return QOS_CLASSES.map((c, i): TcCommand => [
    'qdisc', 'add', 'dev', p.device, 'parent', classId(c.minor), 'handle', leafHandle(i),
    ...(c.name === 'default' ? splitterLeaf(p) : leaf === 'fq_codel' ? ['fq_codel'] : ['pfifo', 'limit', String(pfifoLimit(p.shapedBitsPerSecond))]),
  ]);
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

/** The filters of one generation: IPv4 at `pref`, IPv6 at `pref + 1` (a u32 filter list holds one protocol). */
export function filterCommands(device: string, matches: readonly QosMatch[], pref: number): TcCommand[] {
  return matches.flatMap((m) =>
    matchRules(m).map((r): TcCommand => ['filter', 'add', 'dev', device, 'parent', ROOT, 'protocol', r.protocol, 'pref', String(r.protocol === 'ip' ? pref : pref + 1), 'u32', ...r.keys, 'flowid', INFERENCE_CLASS]),
  );
}

/** Removes one generation of filters (both protocols), leaving the other in place. */
export function deleteFilterCommands(device: string, matches: readonly QosMatch[], pref: number): TcCommand[] {
  const protocols = new Set(matches.flatMap((m) => matchRules(m).map((r) => r.protocol)));
  const v4 = protocols.has('ip');
  const v6 = protocols.has('ipv6');
  return [
    ...(v4 ? [['filter', 'del', 'dev', device, 'parent', ROOT, 'protocol', 'ip', 'pref', String(pref)]] : []),
    ...(v6 ? [['filter', 'del', 'dev', device, 'parent', ROOT, 'protocol', 'ipv6', 'pref', String(pref + 1)]] : []),
  ];
}

/** Everything ModelGuard installed goes with its root qdisc; the kernel puts its default back. */
export function removeCommands(device: string): TcCommand[] {
  return [['qdisc', 'del', 'dev', device, 'root', 'handle', ROOT]];
}

/** The whole installation, as an administrator would type it. */
export function installCommands(p: QosPlanInput): TcCommand[] {
  return [...structureCommands(p), ...leafCommands(p, p.leaf), ...filterCommands(p.device, p.matches, FILTER_PREFS[0])];
}
