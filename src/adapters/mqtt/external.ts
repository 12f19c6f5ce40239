/**
 * An external broker (mosquitto, EMQX, …): ModelGuard is an MQTT 5 client that subscribes to the
 * request topics — as a shared subscription when several instances split the work — and publishes
 * the replies. MQTT.js reconnects on its own and re-subscribes after a reconnect.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { MqttSnapshot } from '../../core/snapshot.ts';
import { requestFilter } from './topics.ts';
import type { MqttTransport, ReplyMessage, RequestMessage } from './transport.ts';

/** How long start() waits for the first subscription before going on and reconnecting in the background. */
const FIRST_CONNECT_MS = 5000;

function readSecret(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new Error(`mqtt.${what}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export function clientOptions(cfg: MqttSnapshot): IClientOptions {
  const opts: IClientOptions = {
    protocolVersion: 5,
    clientId: cfg.clientId ?? `modelguard-${randomBytes(4).toString('hex')}`,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    resubscribe: true,
  };
  if (cfg.username !== undefined) opts.username = cfg.username;
  if (cfg.passwordFile !== undefined) opts.password = readSecret(cfg.passwordFile, 'passwordFile');
  if (cfg.tls?.ca !== undefined) opts.ca = readSecret(cfg.tls.ca, 'tls.ca');
  if (cfg.tls?.cert !== undefined) opts.cert = readSecret(cfg.tls.cert, 'tls.cert');
  if (cfg.tls?.key !== undefined) opts.key = readSecret(cfg.tls.key, 'tls.key');
  return opts;
}

/**
 * Small request/reply packets must not wait for Nagle's algorithm: with it, a reply written while
 * the PUBACK before it is unacknowledged waits for the peer's delayed ACK (~40 ms on Linux).
 * MQTT.js does not set TCP_NODELAY itself.
 */
export function noDelay(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (on: boolean) => unknown } | undefined;
  stream?.setNoDelay?.(true);
}

export class ExternalBroker implements MqttTransport {
  private client: MqttClient | undefined;
  private readonly filter: string;

  constructor(
    private readonly cfg: MqttSnapshot,
    readonly url: string,
  ) {
    const f = requestFilter(cfg.topicPrefix);
    this.filter = cfg.sharedGroup === undefined ? f : `$share/${cfg.sharedGroup}/${f}`;
  }

  get connected(): boolean {
    return this.client?.connected === true;
  }

  async start(onRequest: (msg: RequestMessage) => void): Promise<void> {
    const client = mqtt.connect(this.url, clientOptions(this.cfg));
    this.client = client;
    let lastError = '';
    client.on('error', (err) => {
      // Reconnects follow; say why once per distinct reason rather than once per second.
      if (err.message !== lastError) process.stderr.write(`modelguard: MQTT broker ${this.url}: ${err.message}\n`);
      lastError = err.message;
    });
    client.on('connect', () => {
      lastError = '';
      noDelay(client);
    });
    client.on('message', (topic, payload, packet) => {
      const p = packet.properties;
      onRequest({
        topic,
        payload,
        responseTopic: p?.responseTopic,
        correlationData: p?.correlationData,
        userProperties: p?.userProperties,
        connectionKey: undefined,
        connectionApp: undefined,
        retained: packet.retain,
        source: undefined,
      });
    });
    const subscribed = new Promise<void>((resolve, reject) => {
      client.once('connect', () => {
        // Retained requests are never sent at subscription (rh 2) and a live one arrives without
        // the retain flag (rap false), so a flagged delivery is a replay the ingress refuses to run.
        // No Local keeps ModelGuard's own publications away from it (not allowed on shared ones).
        const opts = { qos: this.cfg.qos, rh: 2, rap: false, ...(this.cfg.sharedGroup === undefined ? { nl: true } : {}) };
        client.subscribe(this.filter, opts, (err, granted) => {
          const code = granted?.[0]?.qos;
          if (err) reject(err);
          else if (code !== undefined && code >= 0x80) reject(new Error(`broker refused the subscription to ${this.filter} (reason code ${code})`));
          else resolve();
        });
      });
    });
    // A refusal that comes after start() stopped waiting is logged, never an unhandled rejection.
    subscribed.catch((err: unknown) => process.stderr.write(`modelguard: MQTT subscription failed: ${(err as Error).message}\n`));
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), FIRST_CONNECT_MS)));
    try {
      const r = await Promise.race([subscribed, waited]);
      if (r === 'timeout') process.stderr.write(`modelguard: MQTT broker ${this.url} not reachable yet; retrying in the background\n`);
    } catch (err) {
      client.end(true);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  reply(msg: ReplyMessage): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('MQTT ingress not started'));
    const properties: { contentType: string; correlationData?: Buffer; userProperties?: Record<string, string> } = { contentType: 'application/json' };
    if (msg.correlationData !== undefined) properties.correlationData = msg.correlationData;
    if (msg.userProperties !== undefined) properties.userProperties = msg.userProperties;
    return new Promise((resolve, reject) => {
      client.publish(msg.topic, msg.payload, { qos: this.cfg.qos, properties }, (err) => (err ? reject(err) : resolve()));
    });
  }

  async stopIntake(): Promise<void> {
    const client = this.client;
    if (!client?.connected) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      client.unsubscribe(this.filter, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await new Promise<void>((resolve) => client.end(!client.connected, {}, () => resolve()));
  }
}
