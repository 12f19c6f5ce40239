// The MQTT payload contract in isolation: what is forwarded to the backend, how replies are framed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MGError } from '../../src/core/errors.ts';
import { decodeRequest, parsePayload, replyAddress } from '../../src/adapters/mqtt/decode.ts';
import { errorReply, successReply } from '../../src/adapters/mqtt/encode.ts';
import { filterReachesRequests, modelOfTopic } from '../../src/adapters/mqtt/topics.ts';
import { PacketScanner } from '../../src/adapters/mqtt/packet-limit.ts';

import type { RequestMessage } from '../../src/adapters/mqtt/transport.ts';

function msg(payload: string, props: Partial<RequestMessage> = {}): RequestMessage {
  return { topic: 'modelguard/v1/infer/m', payload: Buffer.from(payload), responseTopic: undefined, correlationData: undefined, userProperties: undefined, connectionKey: undefined, connectionApp: undefined, retained: false, source: undefined, ...props };
}

describe('MQTT decode', () => {
  it('takes the envelope out of the forwarded body, so a key never reaches the backend', () => {
    const m = msg(JSON.stringify({ inputs: [], replyTo: 'r/1', id: 7, timeoutMs: 250, apiKey: 'k', serviceGroup: 'g' }));
    const { doc } = parsePayload(m.payload);
    const d = decodeRequest(m, doc);
    assert.deepEqual(JSON.parse(d.body.toString()), { inputs: [] });
    assert.deepEqual(d.creds, { key: 'k', group: 'g' });
    assert.equal(d.timeoutMs, 250);
    assert.deepEqual(replyAddress(m, doc), { topic: 'r/1', v5: false, correlationData: undefined, id: 7 });
  });

  it('forwards a plain KServe body as the same buffer, and keeps a string id (KServe request id)', () => {
    const m = msg(JSON.stringify({ id: 'abc', inputs: [] }), { responseTopic: 'r', correlationData: Buffer.from('x') });
    const d = decodeRequest(m, parsePayload(m.payload).doc);
    assert.equal(d.body, m.payload);
  });

  it('reads keys from MQTT 5 user properties and refuses disagreeing ones', () => {
    const ok = msg('{}', { userProperties: { authorization: 'Bearer k1' } });
    assert.equal(decodeRequest(ok, {}).creds.key, 'k1');
    const clash = msg('{}', { userProperties: { authorization: 'Bearer k1', 'x-api-key': 'k2' } });
    assert.throws(() => decodeRequest(clash, {}), (e: unknown) => e instanceof MGError && e.code === 'MG_UNAUTHENTICATED');
    const twice = msg('{}', { userProperties: { 'x-api-key': ['a', 'b'] } });
    assert.throws(() => decodeRequest(twice, {}), (e: unknown) => e instanceof MGError && e.code === 'MG_BAD_REQUEST');
    const conn = msg('{}', { connectionKey: 'from-connect' });
    assert.equal(decodeRequest(conn, {}).creds.key, 'from-connect');
  });

  it('has no reply address for wildcard or $ topics, or none at all', () => {
    assert.equal(replyAddress(msg('{}'), {}), undefined);
    assert.equal(replyAddress(msg('{}'), { replyTo: 'a/#' }), undefined);
    assert.equal(replyAddress(msg('{}'), { replyTo: '$SYS/x' }), undefined);
    assert.equal(replyAddress(msg('{}', { responseTopic: 'a/+' }), {}), undefined);
  });
});

describe('MQTT encode', () => {
  const answer = Buffer.from('{"model_name":"m","id":"abc","outputs":[]}');

  it('MQTT 5 success: the backend buffer itself, untouched', () => {
    const r = successReply({ topic: 't', v5: true, correlationData: Buffer.from('c'), id: undefined }, answer, 'edge', 'rid');
    assert.equal(r.payload, answer);
    assert.equal(r.userProperties?.['x-modelguard-served-by'], 'edge');
  });

  it('MQTT 3.1.1 success: servedBy spliced in; an echoed id kept, a numeric id put back', () => {
    const r = successReply({ topic: 't', v5: false, correlationData: undefined, id: 'abc' }, answer, 'cloud', 'rid');
    assert.deepEqual(JSON.parse(r.payload.toString()), { servedBy: 'cloud', model_name: 'm', id: 'abc', outputs: [] });
    const n = successReply({ topic: 't', v5: false, correlationData: undefined, id: 42 }, answer, 'edge', 'rid');
    assert.equal((JSON.parse(n.payload.toString()) as { id: unknown }).id, 42);
    const empty = successReply({ topic: 't', v5: false, correlationData: undefined, id: undefined }, Buffer.from(' {} '), 'edge', 'rid');
    assert.deepEqual(JSON.parse(empty.payload.toString()), { servedBy: 'edge' });
  });

  it('errors: code and message, id echoed, retry hint on retryable codes', () => {
    const e = new MGError('MG_QUEUE_FULL', undefined, { retryAfterMs: 1200 });
    const r3 = errorReply({ topic: 't', v5: false, correlationData: undefined, id: 'q' }, e, 'rid', undefined);
    assert.deepEqual(JSON.parse(r3.payload.toString()), { error: { code: 'MG_QUEUE_FULL', message: 'service group queue is full', retryAfterMs: 1200 }, id: 'q' });
    const r5 = errorReply({ topic: 't', v5: true, correlationData: Buffer.from('c'), id: undefined }, e, 'rid', undefined);
    assert.equal(r5.userProperties?.['x-modelguard-error'], 'MG_QUEUE_FULL');
    assert.equal(r5.correlationData?.toString(), 'c');
  });
});

describe('MQTT topics', () => {
  it('names the model of a request topic', () => {
    assert.equal(modelOfTopic('modelguard/v1', 'modelguard/v1/infer/resnet50'), 'resnet50');
    assert.equal(modelOfTopic('modelguard/v1', 'modelguard/v1/infer/a/b'), undefined);
    assert.equal(modelOfTopic('modelguard/v1', 'other/v1/infer/a'), undefined);
  });

  it('knows which subscription filters would read requests', () => {
    for (const f of ['#', 'modelguard/#', '+/+/infer/+', 'modelguard/v1/infer/m', 'modelguard/v1/+/+']) assert.ok(filterReachesRequests('modelguard/v1', f), f);
    for (const f of ['modelguard/v1/reply/#', 'modelguard/v1/infer', 'modelguard/v1/infer/m/x', 'a/b']) assert.ok(!filterReachesRequests('modelguard/v1', f), f);
  });
});

describe('MQTT packet size limit (embedded broker)', () => {
  /** A QoS 0 PUBLISH as MQTT 3.1.1 frames it: 0x30, remaining length (varint), topic, payload. */
  const publish = (bytes: number): Buffer => {
    const topic = Buffer.from('modelguard/v1/infer/m');
    const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.alloc(bytes)]);
    const len: number[] = [];
    let n = body.length;
    do {
      len.push((n % 128) | (n >= 128 ? 0x80 : 0));
      n = Math.floor(n / 128);
    } while (n > 0);
    return Buffer.concat([Buffer.from([0x30, ...len]), body]);
  };
  const PINGREQ = Buffer.from([0xc0, 0x00]);

  it('follows packet boundaries across reads of any size and lets packets under the limit through', () => {
    const stream = Buffer.concat([publish(10), publish(300), PINGREQ, publish(1000)]);
    for (const chunk of [1, 3, 7, 64, stream.length]) {
      const s = new PacketScanner(1100);
      for (let i = 0; i < stream.length; i += chunk) assert.equal(s.feed(stream.subarray(i, i + chunk)), undefined, `chunk ${chunk}`);
    }
  });

  it('refuses a packet over the limit from its header, before its body', () => {
    const s = new PacketScanner(1000);
    assert.equal(s.feed(publish(100)), undefined);
    const big = publish(200_000);
    assert.match(s.feed(big.subarray(0, 4)) ?? '', /over the limit of 1000/);
    assert.match(new PacketScanner(1e9).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff])) ?? '', /malformed/);
  });
});
