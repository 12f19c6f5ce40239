/**
 * A raw MQTT 3.1.1 client on net.Socket: packets built by hand (so they can be wrong on purpose)
 * and the broker's answers read off the wire — CONNACK return code, SUBACK codes, PUBLISH
 * deliveries, and whether the broker closed the connection.
 *
 *   fixed header: type<<4 | flags, remaining length (varint), variable header, payload
 */
import net from 'node:net';

export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export function packet(type: number, flags: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(type << 4) | flags]), remainingLength(body.length), body]);
}

export function connectPacket(opts: { clientId?: string; username?: string; password?: string; level?: number; will?: { topic: string; payload: string; retain?: boolean } } = {}): Buffer {
  let flags = 0x02; // clean session
  if (opts.username !== undefined) flags |= 0x80;
  if (opts.password !== undefined) flags |= 0x40;
  if (opts.will) flags |= 0x04 | (opts.will.retain ? 0x20 : 0);
  const parts = [str('MQTT'), Buffer.from([opts.level ?? 4, flags, 0, 60]), str(opts.clientId ?? `raw-${Math.random().toString(36).slice(2, 10)}`)];
  if (opts.will) parts.push(str(opts.will.topic), str(opts.will.payload));
  if (opts.username !== undefined) parts.push(str(opts.username));
  if (opts.password !== undefined) parts.push(str(opts.password));
  return packet(1, 0, Buffer.concat(parts));
}

export function subscribePacket(id: number, filter: string, qos = 1): Buffer {
  const pid = Buffer.alloc(2);
  pid.writeUInt16BE(id);
  return packet(8, 2, Buffer.concat([pid, str(filter), Buffer.from([qos])]));
}

export function publishPacket(topic: string | Buffer, payload: Buffer | string, opts: { qos?: 0 | 1; retain?: boolean; id?: number } = {}): Buffer {
  const qos = opts.qos ?? 0;
  const parts = [str(topic)];
  if (qos > 0) {
    const pid = Buffer.alloc(2);
    pid.writeUInt16BE(opts.id ?? 1);
    parts.push(pid);
  }
  parts.push(typeof payload === 'string' ? Buffer.from(payload) : payload);
  return packet(3, (qos << 1) | (opts.retain ? 1 : 0), Buffer.concat(parts));
}

export interface Delivery {
  readonly topic: string;
  readonly payload: Buffer;
}

/** One raw connection; collects what the broker sends. */
export class RawMqtt {
  readonly deliveries: Delivery[] = [];
  readonly subacks: number[] = [];
  connack: number | undefined;
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawMqtt> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawMqtt(s)));
      s.once('error', reject);
    });
  }

  /** Opens and sends CONNECT; resolves once the CONNACK (or the close) came. */
  static async login(port: number, opts: Parameters<typeof connectPacket>[0] = {}): Promise<RawMqtt> {
    const c = await RawMqtt.open(port);
    c.send(connectPacket(opts));
    await c.until(() => c.connack !== undefined);
    return c;
  }

  send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `cond` holds or the connection closed; rejects after timeoutMs. */
  until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('raw MQTT: timed out')), timeoutMs);
      const check = (): void => {
        if (cond() || this.closed) {
          clearTimeout(t);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  async subscribe(filter: string, id = 1): Promise<number> {
    const n = this.subacks.length;
    this.send(subscribePacket(id, filter));
    await this.until(() => this.subacks.length > n);
    return this.closed && this.subacks.length === n ? -1 : (this.subacks[n] as number);
  }

  private parse(): void {
    for (;;) {
      if (this.buf.length < 2) return;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (;;) {
        if (i >= this.buf.length) return;
        const b = this.buf[i++] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) break;
      }
      if (this.buf.length < i + len) return;
      const type = (this.buf[0] as number) >> 4;
      const qos = ((this.buf[0] as number) >> 1) & 3;
      const body = this.buf.subarray(i, i + len);
      this.buf = this.buf.subarray(i + len);
      if (type === 2) this.connack = body[1];
      else if (type === 9) this.subacks.push(body[2] as number);
      else if (type === 3) {
        const tl = body.readUInt16BE(0);
        const topic = body.toString('utf8', 2, 2 + tl);
        const start = 2 + tl + (qos > 0 ? 2 : 0);
        if (qos > 0) this.send(packet(4, 0, body.subarray(2 + tl, 4 + tl))); // PUBACK
        this.deliveries.push({ topic, payload: Buffer.from(body.subarray(start)) });
      }
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
