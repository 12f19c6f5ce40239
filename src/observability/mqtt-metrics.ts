/**
 * MQTT ingress metrics, read from the ingress at scrape time (like the broker gauges): what the
 * request records cannot show — requests that could not be answered at all, replies the broker did
 * not take, and whether ModelGuard is connected to its broker.
 */
import { Counter, Gauge, type Registry } from '../core/prom.ts';

/** What the MQTT ingress exposes to be counted (its stats and connection), whatever its transport. */
export interface MqttFigures {
  readonly stats: Readonly<{ dropped: number; refused: number; replyFailures: number }>;
  readonly connected: boolean;
}

export function registerMqttMetrics(registry: Registry, ingress: MqttFigures): void {
  new Counter({
    name: 'modelguard_mqtt_dropped_total',
    help: 'MQTT requests dropped unanswered because they named no reply topic (responseTopic or replyTo)',
    registry,
    collect() {
      this.reset();
      this.inc(ingress.stats.dropped);
    },
  });
  new Counter({
    name: 'modelguard_mqtt_refused_total',
    help: 'MQTT requests not run and not answered: a retained replay, or a reply topic nobody may be answered on (a request topic, reserved, or another app\'s)',
    registry,
    collect() {
      this.reset();
      this.inc(ingress.stats.refused);
    },
  });
  new Counter({
    name: 'modelguard_mqtt_reply_failures_total',
    help: 'MQTT replies the broker connection did not take (the device did not hear back)',
    registry,
    collect() {
      this.reset();
      this.inc(ingress.stats.replyFailures);
    },
  });
  new Gauge({
    name: 'modelguard_mqtt_connected',
    help: '1 while ModelGuard is connected to its external broker, or its embedded broker is listening; else 0',
    registry,
    collect() {
      this.set(ingress.connected ? 1 : 0);
    },
  });
}
