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
 *
 * With two or more ServiceGroup priority levels (core/levels.ts), calls to remote backends leave from
 * one block of local ports per level, and each level has its own class between the two:
 *
 *         ├─ 4d47:10 inference          rate 15%            prio 0    probes, answers, MQTT
 *         ├─ 4d47:11 priority 10        rate 60% × 2/3      prio 0    ← sport 49152/0xfe00 to a backend
 *         │  └─ 4d4a: tbf (GSO splitter)
 *         ├─ 4d47:12 priority 0         rate 60% × 1/3      prio 1    ← sport 49664/0xfe00 to a backend
 *         │  └─ 4d4b: tbf (GSO splitter)
 *         └─ 4d47:20 default            rate 25%            prio n (number of levels)
 */

/** Major handle of every qdisc ModelGuard installs ("MG"): how it knows its own after a crash. */
export const QOS_HANDLE = 0x4d47;
export const ROOT = `${QOS_HANDLE.toString(16)}:`;
export const CLASS_TOP = `${QOS_HANDLE.toString(16)}:1`;

/** The classes under the top class without priority levels: a stable name (metrics, dashboard) and their minor ids. */
export const QOS_CLASSES = [
  { name: 'inference', minor: 0x10, share: 0.75, prio: 0 },
  { name: 'default', minor: 0x20, share: 0.25, prio: 1 },
] as const;

/** One HTB class under the top class. */
export interface QosClassSpec {
  /** Metric label: `inference`, `default`, or a level's `priority 10`. */
  readonly name: string;
  readonly minor: number;
  /** Guaranteed share of the shaped rate (every class may borrow up to all of it). */
  readonly share: number;
  /** HTB prio: lower is served first among classes that borrow. */
  readonly prio: number;
  /** The level's groups (empty for inference and default). */
  readonly groups: readonly string[];
  /** Which leaf qdisc it gets: the inference leaf (fq_codel/pfifo) or the GSO splitter. */
  readonly leaf: 'inference' | 'splitter';
  /** Its leaf qdisc's handle: 4d48: inference, 4d49: default, 4d4a: and up the levels. */
  readonly leafHandle: string;
}

/** A priority level as the planner needs it (core/levels.ts). */
export interface QosLevel {
  readonly name: string;
  readonly groups: readonly string[];
  /** First local port of its block and the u32 mask that matches the block. */
  readonly firstPort: number;
  readonly mask: number;
  readonly lastPort: number;
}

/** One kind of packet that belongs to the inference class. */
export type QosMatch =
  /** Connections ModelGuard opens: to a remote backend endpoint, an offload target, an MQTT broker. */
  | {
      readonly kind: 'destination';
      readonly address: string;
      readonly family: 4 | 6;
      readonly port: number;
      readonly why: string;
      /** A backend endpoint that dispatch reaches with one connection pool per priority level. */
      readonly levelled?: true;
    }
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
  /** Priority levels, highest first; absent or empty: one inference class for all. */
  readonly levels?: readonly QosLevel[];
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
  readonly name: string;
  /** The level's groups, comma-separated ("" for inference and default). */
  readonly groups: string;
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
  /** Per-priority classes installed (empty without them). */
  readonly levels: readonly QosLevel[];
  readonly reason: string | undefined;
}
