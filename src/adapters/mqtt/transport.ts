/**
 * What the MQTT ingress needs from a broker connection, so one adapter serves both an external
 * broker (an MQTT.js client, src/adapters/mqtt/external.ts) and the embedded one (aedes in-process,
 * src/adapters/mqtt/embedded.ts).
 */

/** One PUBLISH on a request topic, as the ingress sees it. */
export interface RequestMessage {
  readonly topic: string;
  readonly payload: Buffer;
  /** MQTT 5 properties of the publish (undefined from an MQTT 3.1.1 publisher or the embedded broker). */
  readonly responseTopic: string | undefined;
  readonly correlationData: Buffer | undefined;
  readonly userProperties: Readonly<Record<string, string | string[]>> | undefined;
  /**
   * The key the publisher proved when it connected (embedded broker only: its password was checked
   * as an API key). External brokers do not tell ModelGuard who published.
   */
  readonly connectionKey: string | undefined;
  /** The app the publisher logged in as (embedded broker only; undefined: anonymous or external). */
  readonly connectionApp: string | undefined;
  /**
   * A retained message the broker replayed (external broker: delivered with the retain flag, which
   * live messages do not carry). Never run: it may be old, and it would run again on every
   * (re)subscription.
   */
  readonly retained: boolean;
  /** The publisher's address, when the broker is embedded (for the source firewall). */
  readonly source: string | undefined;
}

/** How a reply is addressed and what rides beside its payload. */
export interface ReplyMessage {
  readonly topic: string;
  readonly payload: Buffer;
  /** MQTT 5 only: echoed correlation data and user properties. */
  readonly correlationData: Buffer | undefined;
  readonly userProperties: Record<string, string> | undefined;
}

export interface MqttTransport {
  /** Where clients reach the broker (the bound URL for an embedded broker on port 0). */
  readonly url: string;
  /** Connected to the external broker, or the embedded one is listening. */
  readonly connected: boolean;
  /** Starts delivering request messages; resolves when subscribed (or the embedded broker listens). */
  start(onRequest: (msg: RequestMessage) => void): Promise<void>;
  /** Publishes a reply; rejects when the broker connection cannot take it. */
  reply(msg: ReplyMessage): Promise<void>;
  /** Stops taking new requests where the broker allows it (replies can still be sent). */
  stopIntake(): Promise<void>;
  close(): Promise<void>;
}
