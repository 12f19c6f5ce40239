/**
 * A cap on MQTT packet size for the embedded broker, which has none of its own: aedes would buffer a
 * packet of up to 256 MiB before anything could refuse it. The scanner follows packet boundaries
 * (fixed header byte, 1–4 byte "remaining length", body) across reads, and the socket is destroyed
 * as soon as a header announces a packet over the limit — before its body is buffered.
 *
 *   | type | remaining length (varint, ≤ 4 bytes) | body (remaining length bytes) | type | …
 */
import type { Socket } from 'node:net';

export class PacketScanner {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly limit: number) {}

  /** Feeds the next bytes; returns a reason when the stream must be closed. */
  feed(buf: Buffer): string | undefined {
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'body') {
        const skip = Math.min(this.remaining, buf.length - i);
        i += skip;
        this.remaining -= skip;
        if (this.remaining === 0) this.state = 'type';
        continue;
      }
      const byte = buf[i++] as number;
      if (this.state === 'type') {
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (byte & 0x80) {
        if (this.lengthBytes === 4) return 'malformed packet length';
        continue;
      }
      if (this.length > this.limit) return `packet of ${this.length} bytes is over the limit of ${this.limit}`;
      this.remaining = this.length;
      this.state = this.length === 0 ? 'type' : 'body';
    }
    return undefined;
  }
}

/**
 * Watches what aedes reads from a device socket (it reads with `read()` on 'readable') and destroys
 * the socket when a packet is too large.
 */
export function limitPackets(socket: Socket, limit: number, onRefused: (reason: string) => void): void {
  const scanner = new PacketScanner(limit);
  const read = socket.read.bind(socket);
  socket.read = (size?: number): unknown => {
    const chunk: unknown = read(size);
    if (Buffer.isBuffer(chunk)) {
      const problem = scanner.feed(chunk);
      if (problem !== undefined) {
        onRefused(problem);
        socket.destroy();
        return null;
      }
    }
    return chunk;
  };
}
