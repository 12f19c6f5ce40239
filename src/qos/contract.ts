/**
 * The contract of traffic QoS (docs/traffic-qos.md): what traffic counts as ModelGuard's inference
 * traffic, the plan of tc commands that classifies it, and the two things the applier needs from the
 * outside world (a way to run tc, a way to know whether we may). No I/O here.
 *
 *   egress of <interface>
 *   └─ htb 4d47: (root; unclassified → 4d47:20)
 *      └─ 4d47:1   rate = shaped ceil = shaped          shaped = uplinkRate × shapePercent
 *         ├─ 4d47:10 inference  rate 75% ceil 100% prio 0   ← u32 filters (the matches below)
 *         │  └─ 4d48: fq_codel (or pfifo where the kernel has no fq_codel)
 *         └─ 4d47:20 default    rate 25% ceil 100% prio 1   ← everything else
 *            └─ 4d49: tbf far above the rate: cuts GSO super-packets into frames (see plan.ts)
 */

/** Major handle of every qdisc ModelGuard installs ("MG"): how it knows its own after a crash. */
export const QOS_HANDLE = 0x4d47;
export const ROOT = `${QOS_HANDLE.toString(16)}:`;
export const CLASS_TOP = `${QOS_HANDLE.toString(16)}:1`;

/** The classes under the top class: a stable name (metrics, dashboard) and their minor ids. */
export const QOS_CLASSES = [
  { name: 'inference', minor: 0x10, share: 0.75, prio: 0 },
  { name: 'default', minor: 0x20, share: 0.25, prio: 1 },
] as const;
export type QosClassName = (typeof QOS_CLASSES)[number]['name'];

/** One kind of packet that belongs to the inference class. */
export type QosMatch =
  /** Connections ModelGuard opens: to a remote backend endpoint, an offload target, an MQTT broker. */
  | { readonly kind: 'destination'; readonly address: string; readonly family: 4 | 6; readonly port: number; readonly why: string }
  /** Answers ModelGuard sends from one of its listeners (any peer). */
  | { readonly kind: 'source-port'; readonly port: number; readonly why: string };

/** Leaf queue of the inference class: fq_codel where the kernel has it, else a short pfifo. */
export type LeafKind = 'fq_codel' | 'pfifo';

export interface QosPlanInput {
  readonly device: string;
  readonly shapedBitsPerSecond: number;
  /** The interface's MTU (bytes, without the Ethernet header). */
  readonly mtu: number;
  readonly leaf: LeafKind;
  readonly matches: readonly QosMatch[];
}

/** A tc invocation without the leading `tc`; also one line of `tc -batch`. */
export type TcCommand = readonly string[];

/** Runs tc (iproute2). Errors carry tc's own message. */
export interface TcRunner {
  /** Runs the commands in order as one `tc -batch`; stops at the first failure. */
  batch(commands: readonly TcCommand[]): Promise<void>;
  /** One tc command's output. */
  run(args: readonly string[]): Promise<string>;
}

/** Kernel counters of one class, from `tc -s class show`. */
export interface QosClassCounters {
  readonly name: QosClassName;
  readonly classid: string;
  readonly bytes: number;
  readonly packets: number;
  readonly drops: number;
  readonly overlimits: number;
  readonly backlogBytes: number;
}

export type QosState =
  /** Not configured. */
  | 'off'
  /** Installed and following the configuration. */
  | 'active'
  /** Configured but not installed; `reason` says why (no CAP_NET_ADMIN, foreign root qdisc, tc failed). */
  | 'inactive';

export interface QosStatus {
  readonly state: QosState;
  readonly device: string | undefined;
  readonly shapedBitsPerSecond: number | undefined;
  readonly leaf: LeafKind | undefined;
  readonly matches: readonly QosMatch[];
  readonly reason: string | undefined;
}
