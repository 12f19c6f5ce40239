/**
 * Network namespaces for the QoS tests: made with unique names, remembered, and deleted in after()
 * even when a test failed (deleting a namespace takes its veths and qdiscs with it).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function sh(args: readonly string[], input?: string): string {
  const [cmd, ...rest] = args;
  return execFileSync(cmd as string, rest, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) });
}

export class Namespaces {
  private readonly made: string[] = [];
  /** Short and unique per test process and run: `mgq<hex>-<name>`. */
  readonly prefix = `mgq${randomBytes(3).toString('hex')}`;

  create(name: string): string {
    const ns = `${this.prefix}-${name}`;
    sh(['ip', 'netns', 'add', ns]);
    this.made.push(ns);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A veth pair between two namespaces, addressed and up. */
  link(a: { ns: string; dev: string; addr: string }, b: { ns: string; dev: string; addr: string }): void {
    sh(['ip', '-n', a.ns, 'link', 'add', a.dev, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns]);
    for (const end of [a, b]) {
      sh(['ip', '-n', end.ns, 'addr', 'add', end.addr, 'dev', end.dev]);
      sh(['ip', '-n', end.ns, 'link', 'set', end.dev, 'up']);
    }
  }

  exec(ns: string, args: readonly string[], input?: string): string {
    return sh(['ip', 'netns', 'exec', ns, ...args], input);
  }

  cleanup(): void {
    for (const ns of this.made.splice(0).reverse()) {
      try {
        sh(['ip', 'netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }
}

/**
 * What a device's traffic control looks like, for before/after comparisons: its configuration, not
 * its counters (HTB reports one among its options, and IPv6 neighbour discovery moves it).
 */
export function tcState(ns: Namespaces, netns: string, dev: string): { qdisc: unknown; classes: string; filters: string } {
  const qdiscs = JSON.parse(ns.exec(netns, ['tc', '-j', 'qdisc', 'show', 'dev', dev])) as { options?: Record<string, unknown> }[];
  for (const q of qdiscs) delete q.options?.['direct_packets_stat'];
  return {
    qdisc: qdiscs,
    classes: ns.exec(netns, ['tc', 'class', 'show', 'dev', dev]),
    filters: ns.exec(netns, ['tc', 'filter', 'show', 'dev', dev]),
  };
}

/**
 * The uplink the QoS tests stand on: edge —veth— router —veth— cloud, routed, with the router's
 * link to the cloud a 10 Mbit/s TBF with a deep buffer (1.25 MB, one second at that rate), as a
 * modem's upstream. `net` is the tests' own /16 prefix ("10.19"): edge 1.1, router 1.2 and 2.1,
 * cloud 2.2 (and `cloudExtra` more addresses there).
 */
export function uplink(ns: Namespaces, net: string, devs: { edge: string; routerEdge: string; modem: string; cloud: string }, cloudExtra: readonly string[] = []): { edge: string; router: string; cloud: string } {
  const edge = ns.create('edge');
  const router = ns.create('router');
  const cloud = ns.create('cloud');
  ns.link({ ns: edge, dev: devs.edge, addr: `${net}.1.1/24` }, { ns: router, dev: devs.routerEdge, addr: `${net}.1.2/24` });
  ns.link({ ns: router, dev: devs.modem, addr: `${net}.2.1/24` }, { ns: cloud, dev: devs.cloud, addr: `${net}.2.2/24` });
  for (const a of cloudExtra) ns.exec(cloud, ['ip', 'addr', 'add', a, 'dev', devs.cloud]);
  ns.exec(edge, ['ip', 'route', 'add', 'default', 'via', `${net}.1.2`]);
  ns.exec(cloud, ['ip', 'route', 'add', 'default', 'via', `${net}.2.1`]);
  ns.exec(router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  ns.exec(router, ['tc', 'qdisc', 'add', 'dev', devs.modem, 'root', 'tbf', 'rate', '10mbit', 'burst', '16kb', 'limit', '1250000']);
  return { edge, router, cloud };
}
