/**
 * MQTT ingress metrics, read from the ingress at scrape time (like the broker gauges): what the
 * request records cannot show — requests that could not be answered at all, replies the broker did
 * not take, and whether ModelGuard is connected to its broker.
 */
import client from 'prom-client';

/** What the MQTT ingress exposes to be counted (its stats and connection), whatever its transport. */
export interface MqttFigures {
  readonly stats: Readonly<{ dropped: number; refused: number; replyFailures: number }>;
  readonly connected: boolean;
}

export function registerMqttMetrics(registry: client.Registry, ingress: MqttFigures): void {
  const r = [registry];
  new client.Counter({
    name: 'modelguard_mqtt_dropped_total',
    help: 'MQTT requests dropped unanswered because they named no reply topic (responseTopic or replyTo)',
    registers: r,
    collect() {
      this.reset();
      this.inc(ingress.stats.dropped);
    },
  });
  new client.Counter({
    name: 'modelguard_mqtt_refused_total',
    help: 'MQTT requests not run and not answered: a retained replay, or a reply topic nobody may be answered on (a request topic, reserved, or another app\'s)',
    registers: r,
    collect() {
      this.reset();
      this.inc(ingress.stats.refused);
    },
  });
  new client.Counter({
    name: 'modelguard_mqtt_reply_failures_total',
    help: 'MQTT replies the broker connection did not take (the device did not hear back)',
    registers: r,
    collect() {
      this.reset();
      this.inc(ingress.stats.replyFailures);
    },
  });
  new client.Gauge({
    name: 'modelguard_mqtt_connected',
    help: '1 while ModelGuard is connected to its external broker, or its embedded broker is listening; else 0',
    registers: r,
    collect() {
      this.set(ingress.connected ? 1 : 0);
    },
  });
}
