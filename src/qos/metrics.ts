/**
 * Prometheus metrics of traffic QoS, read from the kernel's counters at scrape time (tc -s class
 * show, reused for a second): bytes, packets, drops and backlog per class, and whether QoS is on.
 * A priority level's class is labelled `class="priority 10"` with its groups in `groups`.
 */
import client from 'prom-client';
import type { TrafficQos } from './applier.ts';

export function registerQosMetrics(registry: client.Registry, qos: TrafficQos): void {
  const r = [registry];
  // `groups`: the ServiceGroups of a priority level's class (absent on inference and default).
  const labels = ['interface', 'class', 'groups'];
  const of = (device: string, c: { name: string; groups: string }): Record<string, string> => (c.groups === '' ? { interface: device, class: c.name } : { interface: device, class: c.name, groups: c.groups });
  const perClass = (name: string, help: string, field: 'bytes' | 'packets' | 'drops' | 'overlimits', kind: 'counter' | 'gauge' = 'counter'): void => {
    const opts = {
      name, help, labelNames: labels, registers: r,
      async collect(this: client.Counter | client.Gauge) {
        this.reset();
        const device = qos.status().device ?? '';
        for (const c of await qos.counters()) {
          if (this instanceof client.Counter) this.inc(of(device, c), c[field]);
          else this.set(of(device, c), c[field]);
        }
      },
    };
    if (kind === 'counter') new client.Counter(opts);
    else new client.Gauge(opts);
  };
  perClass('modelguard_qos_class_bytes_total', 'Bytes sent by each traffic QoS class on the uplink (kernel counter; restarts at 0 when QoS is reinstalled)', 'bytes');
  perClass('modelguard_qos_class_packets_total', 'Packets sent by each traffic QoS class on the uplink (kernel counter)', 'packets');
  perClass('modelguard_qos_class_drops_total', 'Packets each traffic QoS class dropped because its queue was full (kernel counter)', 'drops');
  perClass('modelguard_qos_class_overlimits_total', 'Times a class had to wait for its rate (kernel counter): the shaper at work', 'overlimits');
  new client.Gauge({
    name: 'modelguard_qos_class_backlog_bytes', help: 'Bytes waiting in each traffic QoS class queue now', labelNames: labels, registers: r,
    async collect() {
      this.reset();
      const device = qos.status().device ?? '';
      for (const c of await qos.counters()) this.set(of(device, c), c.backlogBytes);
    },
  });
  new client.Gauge({
    name: 'modelguard_qos_active', help: '1 while traffic QoS is installed on the interface, 0 when configured but not installed (see the log)', labelNames: ['interface'], registers: r,
    collect() {
      this.reset();
      const s = qos.status();
      if (s.state !== 'off' && s.device !== undefined) this.set({ interface: s.device }, s.state === 'active' ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'modelguard_qos_shaped_rate_bits', help: 'Rate the uplink is shaped to, bits per second', labelNames: ['interface'], registers: r,
    collect() {
      this.reset();
      const s = qos.status();
      if (s.state === 'active' && s.device !== undefined && s.shapedBitsPerSecond !== undefined) this.set({ interface: s.device }, s.shapedBitsPerSecond);
    },
  });
}
