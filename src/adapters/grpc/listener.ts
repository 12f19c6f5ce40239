/**
 * The inference gRPC listener, with the gRPC stack loaded by its first connection. The port is held
 * from the start by a plain TCP server (bound, reported and refused like every other listener); the
 * stack (grpc-js, protobufjs and the KServe translation: about 10 MiB resident in every `up` and
 * proxy) is loaded when a client first connects, and every connection is handed to it through
 * grpc-js's connection injector. A box whose apps speak only HTTP never pays for gRPC; the first
 * gRPC client waits once for the load (tens of milliseconds compiled).
 */
import net from 'node:net';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import { listen } from '../../net/listen.ts';

interface Stack {
  inject(socket: net.Socket): void;
  close(): Promise<void>;
}

async function loadStack(pipeline: Pipeline): Promise<Stack> {
  const [{ ServerCredentials }, { closeGrpc, createGrpcServer }] = await Promise.all([import('@grpc/grpc-js'), import('./server.ts')]);
  const { server } = createGrpcServer(pipeline);
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  return {
    inject: (socket) => {
      injector.injectConnection(socket);
      // Accepted paused (below): HTTP/2 now reads the socket's handle itself, once reading starts.
      socket.resume();
    },
    close: () => closeGrpc(server),
  };
}

export class GrpcListener {
  private readonly tcp: net.Server;
  private stack: Promise<Stack> | undefined;
  private readonly waiting = new Set<net.Socket>();

  constructor(private readonly pipeline: Pipeline) {
    // Paused until the stack takes the socket: nothing the client sends is read before that.
    this.tcp = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  /** Binds; resolves with a gRPC target `host:port` clients can dial. */
  async start(addr: string): Promise<string> {
    return (await listen(this.tcp, addr, 'grpc')).replace(/^http:\/\//, '');
  }

  private accept(socket: net.Socket): void {
    this.waiting.add(socket);
    socket.once('close', () => this.waiting.delete(socket));
    this.stack ??= loadStack(this.pipeline);
    this.stack.then(
      (stack) => {
        if (!this.waiting.delete(socket) || socket.destroyed) return;
        stack.inject(socket);
      },
      (err: unknown) => {
        // Not expected (the stack ships with ModelGuard); said once per attempt, tried again by the next client.
        process.stderr.write(`modelguard: the gRPC stack failed to load: ${err instanceof Error ? err.message : String(err)}\n`);
        this.stack = undefined;
        socket.destroy();
      },
    );
  }

  /** Stops taking connections; calls in flight get up to a second (the stack's shutdown). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.tcp.listening ? this.tcp.close(() => resolve()) : resolve()));
    for (const s of this.waiting) s.destroy();
    this.waiting.clear();
    const stack = await this.stack?.catch(() => undefined);
    await Promise.all([stack?.close(), closed]);
  }
}
