// The pieces every protocol shares: one credential parser, one bounded error message, the gRPC
// status text, the pass-through authorizer's reading of a method and a message, and the MQTT topic
// ACL and payload scans — each against the rule it implements.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { boundMessage, echo, MAX_ECHO_CHARS, MAX_MESSAGE_CHARS, MGError } from '../../src/core/errors.ts';
import { grpcDetails, MAX_GRPC_MESSAGE_BYTES } from '../../src/core/grpc-status.ts';
import { bearerToken, GRPC_LABELS, HTTP_LABELS, MQTT_LABELS, parseCredentials } from '../../src/security/credentials.ts';
import { checkNamedModels, passthroughNeeds, stringFields } from '../../src/security/passthrough.ts';
import { filterReachesRequests, isRequestTopic, mayRead, modelOfTopic, topicOwner } from '../../src/adapters/mqtt/topics.ts';
import { nestsDeeperThan, parsePayload, salvageEnvelope } from '../../src/adapters/mqtt/decode.ts';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof MGError ? err.code : 'not an MGError';
  }
  return undefined;
};

describe('one credential parser', () => {
  it('reads Bearer tokens strictly: one token, no commas, scheme in any case', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer   abc '), 'abc');
    assert.equal(bearerToken('Bearer a, Bearer b'), undefined);
    assert.equal(bearerToken('Bearer a b'), undefined);
    assert.equal(bearerToken('Basic abc'), undefined);
    assert.equal(bearerToken('Bearer '), undefined);
  });

  it('the same rules on every protocol, with the protocol\'s own names in the message', () => {
    for (const labels of [HTTP_LABELS, GRPC_LABELS, MQTT_LABELS]) {
      assert.deepEqual(parseCredentials({ authorization: 'Bearer k' }, labels), { key: 'k', group: undefined });
      assert.deepEqual(parseCredentials({ apiKey: ' k ', group: ' g ' }, labels), { key: 'k', group: 'g' });
      assert.equal(code(() => parseCredentials({ authorization: 'Bearer k', apiKey: 'j' }, labels)), 'MG_UNAUTHENTICATED');
      assert.equal(code(() => parseCredentials({ authorization: 'Token k' }, labels)), 'MG_UNAUTHENTICATED');
    }
    assert.throws(() => parseCredentials({ authorization: 'x' }, HTTP_LABELS), /^MGError: Authorization must be "Bearer <key>"$/);
    assert.throws(() => parseCredentials({ authorization: 'x' }, GRPC_LABELS), /authorization metadata must be/);
  });

  it('MQTT: a payload key must be a string and agree; the connection key stands in only when none is sent', () => {
    assert.equal(parseCredentials({ connectionKey: 'c' }, MQTT_LABELS).key, 'c');
    assert.equal(parseCredentials({ payloadKey: 'p', connectionKey: 'c' }, MQTT_LABELS).key, 'p');
    assert.equal(code(() => parseCredentials({ payloadKey: 5 }, MQTT_LABELS)), 'MG_UNAUTHENTICATED');
    assert.equal(code(() => parseCredentials({ apiKey: 'a', payloadKey: 'b' }, MQTT_LABELS)), 'MG_UNAUTHENTICATED');
    assert.equal(parseCredentials({ group: 5 }, MQTT_LABELS).group, undefined);
  });
});

describe('bounded error messages', () => {
  it('echo quotes short input as is and cuts long input with an ellipsis and its length', () => {
    assert.equal(echo('demo'), '"demo"');
    const long = echo('x'.repeat(100_000));
    assert.ok(long.length < MAX_ECHO_CHARS + 40);
    assert.match(long, /^"x{256}…" \(100000 chars\)$/);
  });

  it('no MGError message exceeds the bound, whatever it was built from', () => {
    const e = new MGError('MG_MODEL_NOT_FOUND', `model ${'y'.repeat(100_000)} is not configured`);
    assert.ok(e.message.length <= MAX_MESSAGE_CHARS);
    assert.match(e.message, /… \(\d+ chars in all\)$/);
    assert.equal(boundMessage('short'), 'short');
  });

  it('grpc-message: well-formed, and its percent-encoded form within the limit', () => {
    for (const input of ['plain', 'é'.repeat(10_000), '\ud800 lone surrogate', '%'.repeat(5000), '\n\r\t'.repeat(3000), 'x'.repeat(100_000)]) {
      const d = grpcDetails(input);
      const encoded = encodeURI(d); // what grpc-js sends; throws on a lone surrogate
      assert.ok(encoded.length <= MAX_GRPC_MESSAGE_BYTES, `${encoded.length} bytes`);
      assert.match(encoded, /^[\x20-\x7e]*$/);
    }
    assert.equal(grpcDetails('plain'), 'plain');
  });
});

describe('the pass-through authorizer', () => {
  const pb = (field: number, s: string): Buffer => Buffer.concat([Buffer.from([field * 8 + 2, Buffer.byteLength(s)]), Buffer.from(s)]);
  const model = { name: 'demo-g', backendModel: 'demo' } as Parameters<typeof checkNamedModels>[1];

  it('admin for the repository, shared memory, trace, log and statistics methods, in any case and any service', () => {
    for (const m of ['RepositoryModelLoad', 'repositorymodelunload', 'RepositoryIndex', 'SystemSharedMemoryRegister', 'CudaSharedMemoryStatus', 'TraceSetting', 'LogSettings', 'ModelStatistics']) {
      assert.equal(passthroughNeeds(`/inference.GRPCInferenceService/${m}`, Buffer.alloc(0)).permission, 'admin', m);
    }
    for (const p of ['/x.Y/load_model', '/x.Y/UnloadAll', '/x.Y/SetTrace', '/x.Y/SharedMemoryRegister', '/x.Y/GetLogSettings']) assert.equal(passthroughNeeds(p, Buffer.alloc(0)).permission, 'admin', p);
    for (const p of ['/modelguard.demo.Echo/Echo', '/x.Y/Download', '/x.Y/Predict']) assert.equal(passthroughNeeds(p, Buffer.alloc(0)).permission, 'infer', p);
    assert.equal(passthroughNeeds('/inference.GRPCInferenceService/ModelConfig', pb(1, 'demo')).permission, 'metadata');
  });

  it('every model a message names must be the authorized one (all occurrences: the server takes the last)', () => {
    const stream = '/inference.GRPCInferenceService/ModelStreamInfer';
    assert.doesNotThrow(() => checkNamedModels(passthroughNeeds(stream, pb(1, 'demo')), model));
    assert.equal(code(() => checkNamedModels(passthroughNeeds(stream, pb(1, 'secret')), model)), 'MG_FORBIDDEN');
    assert.equal(code(() => checkNamedModels(passthroughNeeds(stream, Buffer.concat([pb(1, 'demo'), pb(1, 'secret')])), model)), 'MG_FORBIDDEN');
    assert.equal(code(() => checkNamedModels(passthroughNeeds(stream, Buffer.alloc(0)), model)), 'MG_BAD_REQUEST');
    // RepositoryModelLoad: model_name is field 2; an empty one (not set) names nothing.
    const load = '/inference.GRPCInferenceService/RepositoryModelLoad';
    assert.equal(code(() => checkNamedModels(passthroughNeeds(load, Buffer.concat([pb(1, 'repo'), pb(2, 'secret')])), model)), 'MG_FORBIDDEN');
    assert.doesNotThrow(() => checkNamedModels(passthroughNeeds(load, pb(1, 'repo')), model));
  });

  it('reads top-level strings, skipping other wire types, refusing what a proto3 parser refuses', () => {
    const fixed = Buffer.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4, 0x18, 0x96, 0x01]);
    assert.deepEqual(stringFields(Buffer.concat([fixed, pb(1, 'a'), pb(2, 'b'), pb(1, 'c')]), 1), ['a', 'c']);
    for (const bad of [Buffer.from([0x0a, 0x05, 0x61]), Buffer.from([0x0b]), Buffer.from([0x00]), Buffer.from([0x09, 1, 2]), Buffer.from([0x0a, 0x02, 0xc3, 0x28]), Buffer.from([0x08, 0x80])]) {
      assert.equal(code(() => stringFields(bad, 1)), 'MG_BAD_REQUEST', bad.toString('hex'));
    }
  });
});

describe('MQTT topics and payload scans', () => {
  const P = 'modelguard/v1';

  it('request topics, including the empty model level; topic owners', () => {
    assert.equal(isRequestTopic(P, `${P}/infer/`), true);
    assert.equal(modelOfTopic(P, `${P}/infer/`), undefined);
    assert.equal(modelOfTopic(P, `${P}/infer/demo`), 'demo');
    assert.equal(isRequestTopic(P, `${P}/infer/demo/x`), false);
    assert.deepEqual(topicOwner(P, `${P}/app-a/replies`), { kind: 'replies', app: 'app-a' });
    assert.deepEqual(topicOwner(P, `${P}/app-a/replies/x/y`), { kind: 'replies', app: 'app-a' });
    assert.deepEqual(topicOwner(P, `${P}/infer/replies`), { kind: 'requests' }, 'a model named "replies" is a request topic');
    assert.deepEqual(topicOwner(P, `${P}/app-a/other`), { kind: 'reserved' });
    assert.deepEqual(topicOwner(P, 'modelguard/v10/x'), { kind: 'outside' });
  });

  it('# matches its parent level (MQTT 3.1.1 §4.7.1.2): <model>/# reaches the request topic', () => {
    for (const f of [`${P}/infer/demo/#`, `${P}/infer/+/#`, `${P}/infer/#`, `${P}/#`, '#', '+/+/+/+', `$share/g/${P}/infer/+`]) assert.equal(filterReachesRequests(P, f), true, f);
    for (const f of [`${P}/infer/demo/x`, `${P}/infer/demo/x/#`, `${P}/infer`, 'other/#']) assert.equal(filterReachesRequests(P, f), false, f);
    assert.equal(mayRead(P, `${P}/infer/replies/#`, 'infer'), false, 'an app named "infer" cannot read requests through its replies');
  });

  it('nesting is counted outside strings only, in one pass', () => {
    assert.equal(nestsDeeperThan(Buffer.from(`{"a":"${'['.repeat(100)}"}`), 2), false);
    assert.equal(nestsDeeperThan(Buffer.from(`{"a":"\\"${'['.repeat(3)}"}`), 2), false);
    assert.equal(nestsDeeperThan(Buffer.from('[[[]]]'), 2), true);
    const p = parsePayload(Buffer.from(`{"replyTo":"r","id":9,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`));
    assert.match(p.problem ?? '', /nested deeper than 64/);
    assert.deepEqual(p.doc, { replyTo: 'r', id: 9 });
  });

  it('salvage keeps only plain top-level replyTo and id, never a nested id or an inherited key', () => {
    assert.deepEqual(salvageEnvelope(Buffer.from('{"id":[[1]],"replyTo":"r"}')), { replyTo: 'r' });
    assert.deepEqual(salvageEnvelope(Buffer.from('{"__proto__":{"replyTo":"x"},"a":"\\"}","replyTo":"r2"}')), { replyTo: 'r2' });
    assert.deepEqual(salvageEnvelope(Buffer.from('{"replyTo":"r","id":')), { replyTo: 'r' });
    assert.equal(salvageEnvelope(Buffer.from('[1]')), undefined);
  });
});
