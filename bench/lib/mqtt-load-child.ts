/**
 * Open-loop MQTT 5 load in its own process: Poisson arrivals (seeded) of KServe requests on
 * modelguard/v1/infer/demo, each with responseTopic and correlationData; latency is from publish to
 * the matching reply. Prints one JSON OpenResult-like line and exits.
 *
 *   node --import tsx bench/lib/mqtt-load-child.ts <brokerUrl> <rate> <durationMs> <seed>
 */
import mqtt from 'mqtt';
import { seededRandom } from '../../src/demo/service-time.ts';
import { INFER_BODY } from './config.ts';

async function main(): Promise<void> {
  const [url, rateText, durationText, seedText] = process.argv.slice(2);
  const rate = Number(rateText);
  const durationMs = Number(durationText);
  const random = seededRandom(Number(seedText));
  const client = await mqtt.connectAsync(url!, { protocolVersion: 5, reconnectPeriod: 0, clean: true });
  (client.stream as { setNoDelay?: (on: boolean) => unknown }).setNoDelay?.(true);
  const replyTopic = `bench/replies/${process.pid}`;
  await client.subscribeAsync(replyTopic, { qos: 1 });
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const byCode: Record<string, number> = {};
  client.on('message', (_topic, payload, packet) => {
    const n = packet.properties?.correlationData?.readUInt32BE(0);
    const t0 = n === undefined ? undefined : sentAt.get(n);
    if (n === undefined || t0 === undefined) return;
    sentAt.delete(n);
    const code = packet.properties?.userProperties?.['x-modelguard-error'];
    const key = typeof code === 'string' ? code : 'OK';
    byCode[key] = (byCode[key] ?? 0) + 1;
    if (key === 'OK') latencies.push(performance.now() - t0);
  });
  const body = Buffer.from(INFER_BODY);
  const start = performance.now();
  let next = start;
  let sent = 0;
  let maxLateMs = 0;
  while (next - start < durationMs) {
    const wait = next - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const now = performance.now();
    maxLateMs = Math.max(maxLateMs, now - next);
    const corr = Buffer.alloc(4);
    corr.writeUInt32BE(sent);
    sentAt.set(sent, now);
    sent++;
    client.publish('modelguard/v1/infer/demo', body, { qos: 1, properties: { responseTopic: replyTopic, correlationData: corr } });
    next += (-Math.log(1 - random()) * 1000) / rate;
  }
  const end = performance.now() + 10_000;
  while (sentAt.size > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
  byCode['no reply'] = sentAt.size;
  await client.endAsync();
  process.stdout.write(JSON.stringify({ sent, latencies, byCode, maxLateMs }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`mqtt load failed: ${String(err)}\n`);
  process.exit(1);
});
