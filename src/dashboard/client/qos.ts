/**
 * The traffic QoS panel: what the kernel's classes on the uplink sent and dropped. Its numbers come
 * from /metrics (modelguard_qos_*, read from `tc -s class show` by the server), polled every 2 s;
 * the panel exists only while the configuration has trafficQoS.
 */
import { count, esc, num } from './format.ts';

export interface QosClassRow {
  readonly name: string;
  /** A priority level's ServiceGroups, comma-separated ("" for inference and default). */
  readonly groups: string;
  readonly bytes: number;
  readonly packets: number;
  readonly drops: number;
  readonly backlogBytes: number;
}

export interface QosReading {
  readonly device: string;
  /** 1 installed, 0 configured but off (the log says why). */
  readonly active: boolean;
  readonly shapedBits: number | undefined;
  readonly classes: readonly QosClassRow[];
}

const LINE = /^(modelguard_qos_[a-z_]+)\{([^}]*)\} ([0-9.e+-]+)$/;

/** The QoS series of a Prometheus text page; undefined when QoS is not configured. */
export function parseQosMetrics(text: string): QosReading | undefined {
  let device: string | undefined;
  let active = false;
  let shapedBits: number | undefined;
  const classes = new Map<string, { groups: string; bytes: number; packets: number; drops: number; backlogBytes: number }>();
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    const value = Number(m[3]);
    device = labels['interface'] ?? device;
    if (m[1] === 'modelguard_qos_active') active = value === 1;
    else if (m[1] === 'modelguard_qos_shaped_rate_bits') shapedBits = value;
    else if (labels['class'] !== undefined) {
      const name = labels['class'];
      const c = classes.get(name) ?? { groups: labels['groups'] ?? '', bytes: 0, packets: 0, drops: 0, backlogBytes: 0 };
      if (m[1] === 'modelguard_qos_class_bytes_total') c.bytes = value;
      if (m[1] === 'modelguard_qos_class_packets_total') c.packets = value;
      if (m[1] === 'modelguard_qos_class_drops_total') c.drops = value;
      if (m[1] === 'modelguard_qos_class_backlog_bytes') c.backlogBytes = value;
      classes.set(name, c);
    }
  }
  if (device === undefined) return undefined;
  return { device, active, shapedBits, classes: [...classes].map(([name, c]) => ({ name, ...c })) };
}

const mbit = (bitsPerSecond: number): string => `${num(bitsPerSecond / 1e6)} Mbit/s`;

/** The panel's HTML; rates come from the previous reading `seconds` ago. */
export function renderQos(now: QosReading, prev: QosReading | undefined, seconds: number): string {
  const head = now.active
    ? `<p><b>${esc(now.device)}</b> shaped to ${now.shapedBits === undefined ? '–' : mbit(now.shapedBits)}; inference goes first</p>`
    : `<p class="empty"><b>${esc(now.device)}</b>: traffic QoS is configured but not installed (see the log: no CAP_NET_ADMIN, or the interface has a qdisc of its own)</p>`;
  const rows = now.classes
    .map((c) => {
      const before = prev?.classes.find((p) => p.name === c.name);
      const rate = before !== undefined && seconds > 0 && c.bytes >= before.bytes ? mbit(((c.bytes - before.bytes) * 8) / seconds) : '–';
      const label = c.groups === '' ? c.name : `${c.name} (${c.groups.split(',').join(', ')})`;
      return `<tr data-qos-class="${esc(c.name)}"><td>${esc(label)}</td><td>${rate}</td><td>${count(c.bytes)}</td><td>${count(c.packets)}</td><td>${count(c.drops)}</td><td>${count(c.backlogBytes)}</td></tr>`;
    })
    .join('');
  return rows === ''
    ? head
    : `${head}<table><thead><tr><th>class</th><th>now</th><th>bytes</th><th>packets</th><th>drops</th><th>queued bytes</th></tr></thead><tbody>${rows}</tbody></table>`;
}

interface PanelElement {
  innerHTML: string;
  className: string;
  id: string;
  appendChild(child: PanelElement): void;
}
declare const document: { getElementById(id: string): PanelElement | null; querySelector(sel: string): PanelElement | null; createElement(tag: string): PanelElement };

/**
 * Polls /metrics and keeps the panel (created on first reading) up to date: every `everyMs` while
 * QoS is configured, every `idleMs` while it is not (a reload may add it), so a page without QoS
 * costs the server one scrape in half a minute.
 */
export function followQos(token: string | undefined, everyMs = 2000, idleMs = 30_000): void {
  let prev: { reading: QosReading; at: number } | undefined;
  const poll = async (): Promise<boolean> => {
    const res = await fetch(token === undefined ? '/metrics' : `/metrics?token=${token}`);
    if (!res.ok) return false;
    const reading = parseQosMetrics(await res.text());
    if (reading === undefined) return false;
    let panel = document.getElementById('qos');
    if (panel === null) {
      panel = document.createElement('section');
      panel.className = 'panel';
      panel.innerHTML = '<h2>Uplink traffic QoS <small>kernel classes on the uplink, since installed</small></h2><div id="qos"></div>';
      document.querySelector('main')?.appendChild(panel);
      panel = document.getElementById('qos');
    }
    const at = Date.now();
    if (panel !== null) panel.innerHTML = renderQos(reading, prev?.reading, prev === undefined ? 0 : (at - prev.at) / 1000);
    prev = { reading, at };
    return true;
  };
  const tick = (): void => {
    poll().then(
      (configured) => setTimeout(tick, configured ? everyMs : idleMs),
      () => setTimeout(tick, idleMs),
    );
  };
  tick();
}
