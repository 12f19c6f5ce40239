/**
 * Prometheus metrics of traffic QoS, read from the kernel's counters at scrape time (tc -s class
 * show, reused for a second): bytes, packets, drops and backlog per class, and whether QoS is on.
 * A priority level's class is labelled `class="priority 10"` with its groups in `groups`.
 */
import { Counter, Gauge, type Labels, type Registry } from '../core/prom.ts';
import type { TrafficQos } from './applier.ts';

export function registerQosMetrics(registry: Registry, qos: TrafficQos): void {
  // `groups`: the ServiceGroups of a priority level's class (absent on inference and default).
  const labelNames = ['interface', 'class', 'groups'] as const;
  type ClassLabels = Labels<(typeof labelNames)[number]>;
  const of = (device: string, c: { name: string; groups: string }): ClassLabels => (c.groups === '' ? { interface: device, class: c.name } : { interface: device, class: c.name, groups: c.groups });
  const perClass = (name: string, help: string, field: 'bytes' | 'packets' | 'drops' | 'overlimits'): void => {
    new Counter({
      name, help, labelNames, registry,
      async collect() {
        this.reset();
        const device = qos.status().device ?? '';
        for (const c of await qos.counters()) this.inc(of(device, c), c[field]);
      },
    });
  };
  perClass('modelguard_qos_class_bytes_total', 'Bytes sent by each traffic QoS class on the uplink (kernel counter; restarts at 0 when QoS is reinstalled)', 'bytes');
  perClass('modelguard_qos_class_packets_total', 'Packets sent by each traffic QoS class on the uplink (kernel counter)', 'packets');
  perClass('modelguard_qos_class_drops_total', 'Packets each traffic QoS class dropped because its queue was full (kernel counter)', 'drops');
  perClass('modelguard_qos_class_overlimits_total', 'Times a class had to wait for its rate (kernel counter): the shaper at work', 'overlimits');
  new Gauge({
    name: 'modelguard_qos_class_backlog_bytes', help: 'Bytes waiting in each traffic QoS class queue now', labelNames, registry,
    async collect() {
      this.reset();
      const device = qos.status().device ?? '';
      for (const c of await qos.counters()) this.set(of(device, c), c.backlogBytes);
    },
  });
  new Gauge({
    name: 'modelguard_qos_active', help: '1 while traffic QoS is installed on the interface, 0 when configured but not installed (see the log)', labelNames: ['interface'], registry,
    collect() {
      this.reset();
      const s = qos.status();
      if (s.state !== 'off' && s.device !== undefined) this.set({ interface: s.device }, s.state === 'active' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'modelguard_qos_shaped_rate_bits', help: 'Rate the uplink is shaped to, bits per second', labelNames: ['interface'], registry,
    collect() {
      this.reset();
      const s = qos.status();
      if (s.state === 'active' && s.device !== undefined && s.shapedBitsPerSecond !== undefined) this.set({ interface: s.device }, s.shapedBitsPerSecond);
    },
  });
}
