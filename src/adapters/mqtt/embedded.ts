/**
 * The embedded broker of the all-in-one box: aedes (MQTT 3.1.1) on a TCP listener, with ModelGuard
 * inside it rather than connected to it. Devices authenticate on CONNECT with username = app name
 * and password = the app's API key (or a JWT naming it); the ingress then knows who published each request without a
 * key in the payload. Devices may connect without credentials (their requests must then carry a
 * key, or get MG_UNAUTHENTICATED), but a wrong password is refused at CONNECT.
 *
 * The broker's ACL (topics.ts has the layout): a device reads only its own app's replies under
 * `<prefix>/<app>/replies/...` and topics outside the prefix; nobody reads the request topics
 * (they carry keys); only ModelGuard writes under the prefix, except requests. Subscriptions are
 * checked when made (SUBACK 0x80) and every delivery again (authorizeForward), so a filter that
 * slipped past the first check still delivers nothing private.
 */
import net, { type AddressInfo } from 'node:net';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import type { MqttSnapshot } from '../../core/snapshot.ts';
import { limitPackets } from './packet-limit.ts';
import { isRequestTopic, mayRead, topicOwner } from './topics.ts';
import type { MqttTransport, ReplyMessage, RequestMessage } from './transport.ts';

/** CONNACK return code 4 (MQTT 3.1.1): bad user name or password. */
const BAD_USERNAME_OR_PASSWORD = 4;

/** Answers which app a key (or JWT) belongs to (undefined: not a key of any app, or not from this address). */
export type KeyCheck = (key: string, source: string | undefined) => Promise<{ app: string | undefined } | undefined>;

function authError(message: string): AuthenticateError {
  return Object.assign<Error, { returnCode: AuthenticateError["returnCode"] }>(new Error(message), { returnCode: BAD_USERNAME_OR_PASSWORD });
}

export class EmbeddedBroker implements MqttTransport {
  private aedes: Aedes | undefined;
  private server: net.Server | undefined;
  private onRequest: ((msg: RequestMessage) => void) | undefined;
  /** The key each device proved at CONNECT. */
  private readonly keys = new WeakMap<Client, string>();
  /** The app each logged-in device proved (absent: anonymous). */
  private readonly apps = new WeakMap<Client, string>();
  url: string;

  constructor(
    private readonly cfg: MqttSnapshot,
    url: string,
    private readonly checkKey: KeyCheck,
    /** Largest MQTT packet a device may send (the largest request body plus room for topic and headers). */
    private readonly maxPacketBytes: number,
  ) {
    this.url = url;
  }

  get connected(): boolean {
    return this.server?.listening === true;
  }

  async start(onRequest: (msg: RequestMessage) => void): Promise<void> {
    this.onRequest = onRequest;
    const prefix = this.cfg.topicPrefix;
    const aedes = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        if (password === undefined) {
          if (username !== undefined) return done(authError('a username needs a password (the app\'s API key)'), false);
          return done(null, true);
        }
        const key = password.toString('utf8');
        void this.checkKey(key, (client.conn as net.Socket).remoteAddress).then((who) => {
          if (who === undefined || (username !== undefined && username !== '' && who.app !== undefined && username !== who.app)) {
            return done(authError('bad username or password'), false);
          }
          this.keys.set(client, key);
          if (who.app !== undefined) this.apps.set(client, who.app);
          done(null, true);
        });
      },
      authorizeSubscribe: (client, sub, done) => {
        // Requests can carry API keys, replies private answers: a device reads only its own app's
        // replies. A null subscription answers SUBACK 0x80 and keeps the connection.
        if (!mayRead(prefix, sub.topic, client === null ? undefined : this.apps.get(client))) return done(null, null);
        done(null, sub);
      },
      authorizePublish: (client, packet, done) => {
        if (client === null) return done(null);
        const owner = topicOwner(prefix, packet.topic);
        if (owner.kind === 'requests') {
          // A request is work, not state: never stored, so no key waits in the broker for a reader.
          packet.retain = false;
          return done(null);
        }
        // Replies come from ModelGuard only; a device writing there would forge them. MQTT 3.1.1
        // has no refusal for a PUBLISH: the connection is closed.
        if (owner.kind !== 'outside') return done(new Error(`only ModelGuard publishes under ${prefix}/ (except requests)`));
        done(null);
      },
      authorizeForward: (client, packet) => {
        const owner = topicOwner(prefix, packet.topic);
        if (owner.kind === 'outside') return packet;
        if (owner.kind === 'replies' && this.apps.get(client) === owner.app) return packet;
        return null;
      },
    });
    aedes.on('publish', (packet, client) => {
      if (client === null || this.onRequest === undefined || !isRequestTopic(prefix, packet.topic)) return;
      const remote = (client.conn as net.Socket).remoteAddress;
      this.onRequest({
        topic: packet.topic,
        payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
        responseTopic: undefined,
        correlationData: undefined,
        userProperties: undefined,
        connectionKey: this.keys.get(client),
        connectionApp: this.apps.get(client),
        retained: false,
        source: remote,
      });
    });
    // TCP_NODELAY: replies are small writes that must not wait for the device's delayed ACK.
    let lastRefusal = 0;
    const server = net.createServer({ noDelay: true }, (socket) => {
      limitPackets(socket, this.maxPacketBytes, (reason) => {
        const now = performance.now();
        if (now - lastRefusal < 10_000) return;
        lastRefusal = now;
        process.stderr.write(`modelguard: embedded MQTT broker closed a connection from ${socket.remoteAddress}: ${reason}\n`);
      });
      aedes.handle(socket);
    });
    const u = new URL(this.url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(u.port === '' ? 1883 : Number(u.port), host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      aedes.close();
      throw err;
    });
    server.on('error', (err) => process.stderr.write(`modelguard: embedded MQTT broker: ${err.message}\n`));
    this.aedes = aedes;
    this.server = server;
    const a = server.address() as AddressInfo;
    const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.url = `mqtt://${h === '0.0.0.0' ? '127.0.0.1' : h === '[::]' ? '[::1]' : h}:${a.port}`;
  }

  reply(msg: ReplyMessage): Promise<void> {
    const aedes = this.aedes;
    if (!aedes || aedes.closed) return Promise.reject(new Error('embedded MQTT broker is closed'));
    const packet: PublishPacket = { cmd: 'publish', topic: msg.topic, payload: msg.payload, qos: this.cfg.qos, retain: false, dup: false };
    return new Promise((resolve, reject) => aedes.publish(packet, (err) => (err ? reject(err) : resolve())));
  }

  /** No new devices (the listener closes); connected ones are still served until close(). */
  /** No new connections, and no new requests from the devices still connected (as an external broker's unsubscribe). */
  stopIntake(): Promise<void> {
    this.onRequest = undefined;
    this.server?.close();
    this.server = undefined;
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.onRequest = undefined;
    const { aedes, server } = this;
    this.aedes = undefined;
    this.server = undefined;
    if (server) server.close();
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }
}
