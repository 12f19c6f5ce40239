/**
 * MQTT test peers: a real mosquitto on a free loopback port with a generated configuration (no
 * system service), and request/reply helpers over MQTT.js for MQTT 5 and MQTT 3.1.1 callers.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Mosquitto {
  readonly url: string;
  close(): Promise<void>;
}

export interface MosquittoOptions {
  /** username → password; when given, anonymous clients are refused. */
  readonly users?: Record<string, string>;
  /** Lines of an acl_file. */
  readonly acl?: string[];
  /** A fixed port (to restart a broker where its clients expect it); default a free one. */
  readonly port?: number;
}

/** mosquitto in its own process on 127.0.0.1:<free port>; resolves once it accepts connections. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'mg-mosquitto-'));
  chmodSync(dir, 0o755);
  const port = opts.port ?? (await freePort());
  const lines = [`listener ${port} 127.0.0.1`, 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', 'user root', 'max_inflight_messages 0', 'set_tcp_nodelay true'];
  if (opts.users) {
    const pw = join(dir, 'passwords');
    writeFileSync(pw, '');
    for (const [user, pass] of Object.entries(opts.users)) execFileSync('/usr/bin/mosquitto_passwd', ['-b', pw, user, pass]);
    lines.push('allow_anonymous false', `password_file ${pw}`);
  } else {
    lines.push('allow_anonymous true');
  }
  if (opts.acl) {
    const acl = join(dir, 'acl');
    writeFileSync(acl, opts.acl.join('\n') + '\n');
    lines.push(`acl_file ${acl}`);
  }
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, lines.join('\n') + '\n');
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`mosquitto exited ${code}: ${stderr}`))));
  const end = performance.now() + 10_000;
  for (;;) {
    const ok = await Promise.race([
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
      exited,
    ]);
    if (ok) break;
    if (performance.now() > end) throw new Error(`mosquitto did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  exited.catch(() => undefined);
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners('exit');
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function connect(url: string, version: 4 | 5, opts: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { protocolVersion: version, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
}

export interface Reply {
  readonly topic: string;
  readonly doc: Record<string, unknown>;
  readonly raw: Buffer;
  readonly userProperties: Record<string, string | string[]> | undefined;
  readonly correlationData: Buffer | undefined;
}

let seq = 0;

/**
 * A caller that subscribes once to its own reply topic and matches each reply to its request —
 * by correlationData (MQTT 5) or by `id` in the payload (MQTT 3.1.1).
 */
export class Caller {
  private readonly pending = new Map<string, (r: Reply) => void>();
  readonly replyTopic: string;
  /** Replies that matched no request (must stay empty). */
  readonly strays: Reply[] = [];

  private constructor(
    readonly client: MqttClient,
    readonly version: 4 | 5,
    replyRoot: string,
  ) {
    this.replyTopic = `${replyRoot}/${process.pid}/${seq++}`;
    client.on('message', (topic, raw, packet) => {
      const doc = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      const correlationData = packet.properties?.correlationData;
      const reply: Reply = { topic, doc, raw, userProperties: packet.properties?.userProperties, correlationData };
      const key = version === 5 ? correlationData?.toString('utf8') : String(doc['id']);
      const done = key === undefined ? undefined : this.pending.get(key);
      if (!done || key === undefined) {
        this.strays.push(reply);
        return;
      }
      this.pending.delete(key);
      done(reply);
    });
  }

  /**
   * `replyRoot` is where the caller's replies go. By default an MQTT 3.1.1 device logged in with a
   * username (the embedded broker's app login) uses its app's reply topics,
   * `modelguard/v1/<app>/replies`, the only ones the embedded broker answers on and lets it read;
   * anyone else uses `test/replies` (outside the prefix: an external broker's ACL governs it).
   */
  static async create(url: string, version: 4 | 5, opts: IClientOptions = {}, replyRoot?: string): Promise<Caller> {
    const client = await connect(url, version, opts);
    const root = replyRoot ?? (version === 4 && typeof opts.username === 'string' && opts.username !== '' ? `modelguard/v1/${opts.username}/replies` : 'test/replies');
    const c = new Caller(client, version, root);
    await client.subscribeAsync(c.replyTopic, { qos: 1 });
    return c;
  }

  /** Publishes one request and resolves with its reply (rejects after timeoutMs). */
  request(model: string, body: Record<string, unknown>, opts: { key?: string; keyInPayload?: boolean; timeoutMs?: number; noReply?: boolean; raw?: Buffer } = {}): Promise<Reply> {
    const id = `c${seq++}`;
    const doc: Record<string, unknown> = { ...body };
    const properties: { responseTopic?: string; correlationData?: Buffer; userProperties?: Record<string, string> } = {};
    if (this.version === 5 && !opts.noReply) {
      properties.responseTopic = this.replyTopic;
      properties.correlationData = Buffer.from(id);
    }
    if (this.version === 4 && !opts.noReply) {
      doc['replyTo'] = this.replyTopic;
      doc['id'] = id;
    }
    if (opts.key !== undefined) {
      if (this.version === 5 && !opts.keyInPayload) properties.userProperties = { 'x-api-key': opts.key };
      else doc['apiKey'] = opts.key;
    }
    const reply = new Promise<Reply>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to ${id} on ${model} within ${opts.timeoutMs ?? 10_000} ms`));
      }, opts.timeoutMs ?? 10_000);
      this.pending.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
    this.client.publish(`modelguard/v1/infer/${model}`, opts.raw ?? JSON.stringify(doc), { qos: 1, ...(this.version === 5 ? { properties } : {}) });
    return reply;
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

export function errorCode(r: Reply): string | undefined {
  const e = r.doc['error'] as { code?: string } | undefined;
  return e?.code;
}
