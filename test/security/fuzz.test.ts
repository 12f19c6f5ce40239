// Seeded, bounded fuzzers for the two parsers that read untrusted bytes first: the gRPC message
// reader of the pass-through authorizer (and the KServe decode behind ModelInfer), and the MQTT
// payload decode (nesting scan, envelope salvage, JSON, envelope fields). In process, each input
// either parses or is refused with MG_BAD_REQUEST/MG_UNAUTHENTICATED — never another exception —
// within a time bound; through the real listeners, every input gets exactly one answer, none is
// MG_INTERNAL, and the process keeps serving. The seed is printed so a failure can be replayed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MGError } from '../../src/core/errors.ts';
import { startGateway, type Gateway } from '../../src/compose/gateway.ts';
import { decodeRequest, nestsDeeperThan, parsePayload, replyAddress, salvageEnvelope } from '../../src/adapters/mqtt/decode.ts';
import type { RequestMessage } from '../../src/adapters/mqtt/transport.ts';
import { inferRequestToJson, WireError } from '../../src/grpc/kserve.ts';
import { wire } from '../../src/grpc/wire.ts';
import { checkNamedModels, passthroughNeeds, stringFields } from '../../src/security/passthrough.ts';
import { fp32Request, grpcSetup, type GrpcSetup } from '../grpc/helpers.ts';
import { accelerator, keyFor, snapshotFor, INFER_BODY, waitFor } from '../helpers/harness.ts';
import { frame, RawGrpc } from './h2-grpc.ts';
import { publishPacket, RawMqtt } from './raw-mqtt.ts';
import { seededRandom as prng } from '../../src/demo/service-time.ts';

const SEED = Number(process.env['MG_FUZZ_SEED'] ?? 20261206);

/** Mutations of a seed input: flips, inserts, deletes, truncations, duplicated ranges, noise, runs of a byte. */
function mutator(rand: () => number, specials: readonly number[]): (seed: Buffer) => Buffer {
  const int = (n: number): number => Math.floor(rand() * n);
  return (seed) => {
    let b = Buffer.from(seed);
    const rounds = 1 + int(4);
    for (let r = 0; r < rounds; r++) {
      const at = int(b.length + 1);
      switch (int(7)) {
        case 0:
          if (b.length > 0) b[int(b.length)] = int(256);
          break;
        case 1:
          b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))), b.subarray(at)]);
          break;
        case 2:
          b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(16)))]);
          break;
        case 3:
          b = b.subarray(0, at);
          break;
        case 4: {
          const from = int(b.length + 1);
          b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + int(32)), b.subarray(at)]);
          break;
        }
        case 5:
          b = Buffer.from(Array.from({ length: int(64) }, () => int(256)));
          break;
        default: {
          const byte = specials[int(specials.length)] as number;
          b = Buffer.concat([b.subarray(0, at), Buffer.alloc(1 + int(rand() < 0.1 ? 5000 : 40), byte), b.subarray(at)]);
        }
      }
    }
    return b;
  };
}

function expectRefusal(err: unknown, what: string, input: Buffer): void {
  if (err instanceof MGError && (err.code === 'MG_BAD_REQUEST' || err.code === 'MG_UNAUTHENTICATED' || err.code === 'MG_FORBIDDEN')) return;
  if (err instanceof WireError) return; // the adapter maps it to MG_BAD_REQUEST
  assert.fail(`${what} threw ${String(err)} for ${input.toString('base64').slice(0, 200)} (seed ${SEED})`);
}

const GRPC_SEEDS = [
  wire.ModelInferRequest.encode(fp32Request('demo', [1, 2, 3, 4])),
  wire.ModelInferRequest.encode({ model_name: 'demo', inputs: [{ name: 'input', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from('x')] } }], raw_input_contents: [] }),
  Buffer.from([0x0a, 0x04, 0x64, 0x65, 0x6d, 0x6f, 0x12, 0x04, 0x64, 0x65, 0x6d, 0x6f]), // RepositoryModelLoad: repository_name, model_name
];
const GRPC_SPECIALS = [0xff, 0x80, 0x0a, 0x12, 0x00, 0x0b];

describe('gRPC message fuzzer', () => {
  it('in process: 20,000 mutated messages parse or are refused with MG_BAD_REQUEST, within the time bound', () => {
    const rand = prng(SEED);
    const mutate = mutator(rand, GRPC_SPECIALS);
    const model = { name: 'demo-g', backendModel: 'demo' } as Parameters<typeof checkNamedModels>[1];
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const input = mutate(GRPC_SEEDS[i % GRPC_SEEDS.length] as Buffer);
      for (const path of ['/inference.GRPCInferenceService/ModelStreamInfer', '/inference.GRPCInferenceService/RepositoryModelLoad', '/x.Y/Z']) {
        try {
          checkNamedModels(passthroughNeeds(path, input), model);
        } catch (err) {
          expectRefusal(err, `pass-through check of ${path}`, input);
        }
      }
      try {
        stringFields(input, 1 + (i % 3));
      } catch (err) {
        expectRefusal(err, 'stringFields', input);
      }
      if (i % 4 === 0) {
        // The adapter turns any protobufjs decode error into MG_BAD_REQUEST (adapters/grpc/server.ts
        // decode()); what it decodes must then translate or fail with a WireError (also MG_BAD_REQUEST).
        let decoded: ReturnType<typeof wire.ModelInferRequest.decode> | undefined;
        try {
          decoded = wire.ModelInferRequest.decode(input);
        } catch {
          decoded = undefined;
        }
        if (decoded !== undefined) {
          try {
            inferRequestToJson(decoded);
          } catch (err) {
            if (!(err instanceof WireError)) assert.fail(`translating a decoded ModelInferRequest threw ${String(err)} (seed ${SEED}, #${i})`);
          }
        }
      }
    }
    const ms = performance.now() - started;
    assert.ok(ms < 30_000, `20,000 inputs took ${Math.round(ms)} ms`);
  });

  describe('through the gRPC listener', () => {
    let s: GrpcSetup;
    let h2: RawGrpc;
    before(async () => {
      s = await grpcSetup();
      h2 = new RawGrpc(s.gw.grpcUrl);
    });
    after(async () => {
      h2.close();
      await s.close();
    });

    it('400 mutated ModelInfer and pass-through messages: each answered once, none MG_INTERNAL, the listener still serves', { timeout: 120_000 }, async () => {
      const rand = prng(SEED + 1);
      const mutate = mutator(rand, GRPC_SPECIALS);
      const bad: string[] = [];
      for (let i = 0; i < 400; i++) {
        const input = mutate(GRPC_SEEDS[i % 2] as Buffer);
        const path = i % 2 === 0 ? '/inference.GRPCInferenceService/ModelInfer' : '/inference.GRPCInferenceService/ModelStreamInfer';
        const a = await h2.call(path, { authorization: `Bearer ${keyFor('g')}`, 'x-modelguard-model': 'demo-g' }, frame(input));
        if (a.grpc < 0 || a.grpc === 2 || a.grpc === 13 || a.mg === 'MG_INTERNAL') bad.push(`#${i} ${path}: status ${a.grpc} ${a.mg ?? ''} ${decodeURIComponent(a.rawMessage).slice(0, 120)}`);
      }
      assert.deepEqual(bad, [], `seed ${SEED + 1}`);
      const ok = await h2.call('/inference.GRPCInferenceService/ModelInfer', { authorization: `Bearer ${keyFor('g')}` }, frame(GRPC_SEEDS[0] as Buffer));
      assert.equal(ok.grpc, 0);
    });
  });
});

const MQTT_SEEDS = [
  JSON.stringify({ replyTo: 'modelguard/v1/app-a/replies/f', id: 1, inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
  JSON.stringify({ inputs: [{ name: 'input', shape: [2, 2], datatype: 'FP32', data: [[1, 2], [3, 4]] }], id: 'x', replyTo: 'modelguard/v1/app-a/replies/g', timeoutMs: 500, apiKey: 'key-a' }),
  '{"replyTo":"modelguard/v1/app-a/replies/h","id":{"a":[1,{"b":"\\"]["}]},"inputs":[]}',
].map((s) => Buffer.from(s));
const MQTT_SPECIALS = [0x5b, 0x7b, 0x5d, 0x7d, 0x22, 0x5c, 0x2c, 0x3a];

function message(payload: Buffer): RequestMessage {
  return { topic: 'modelguard/v1/infer/demo', payload, responseTopic: undefined, correlationData: undefined, userProperties: undefined, connectionKey: undefined, connectionApp: undefined, retained: false, source: undefined };
}

describe('MQTT payload fuzzer', () => {
  it('in process: 20,000 mutated payloads decode or are refused with MG_BAD_REQUEST/MG_UNAUTHENTICATED, within the time bound', () => {
    const rand = prng(SEED + 2);
    const mutate = mutator(rand, MQTT_SPECIALS);
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const input = mutate(MQTT_SEEDS[i % MQTT_SEEDS.length] as Buffer);
      nestsDeeperThan(input, 64);
      const salvaged = salvageEnvelope(input);
      assert.ok(salvaged === undefined || typeof salvaged === 'object');
      const p = parsePayload(input);
      const msg = message(input);
      replyAddress(msg, p.doc);
      try {
        decodeRequest(msg, p.doc, p.problem);
      } catch (err) {
        expectRefusal(err, 'MQTT decode', input);
      }
    }
    const ms = performance.now() - started;
    assert.ok(ms < 30_000, `20,000 payloads took ${Math.round(ms)} ms`);
  });

  it('through the embedded broker: 400 mutated payloads each end exactly once (reply, drop or refusal), none MG_INTERNAL, and it still serves', { timeout: 120_000 }, async () => {
    const acc = await accelerator({ slots: 2, serviceTime: 1 });
    const gw: Gateway = await startGateway(snapshotFor({ endpoints: [{ url: acc.url, slots: 2 }], groups: [{ name: 'a' }], gateway: { mqtt: { embedded: true } } }), {
      http: '127.0.0.1:0',
      grpc: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      mqtt: 'mqtt://127.0.0.1:0',
    });
    try {
      const port = Number(new URL(gw.mqttUrl ?? '').port);
      const dev = await RawMqtt.login(port, { username: 'app-a', password: keyFor('a') });
      assert.equal(await dev.subscribe('modelguard/v1/app-a/replies/#'), 1);
      const rand = prng(SEED + 3);
      const mutate = mutator(rand, MQTT_SPECIALS);
      const st = gw.mqtt?.stats;
      assert.ok(st);
      const ended = (): number => st.replied + st.dropped + st.refused + st.replyFailures;
      const before = ended();
      const N = 400;
      for (let i = 0; i < N; i++) dev.send(publishPacket('modelguard/v1/infer/demo', mutate(MQTT_SEEDS[i % MQTT_SEEDS.length] as Buffer), { qos: 1, id: 1 + i }));
      await waitFor(() => ended() - before === N, `${N} outcomes (seed ${SEED + 3})`, 60_000);
      assert.equal(dev.closed, false);
      const internal = dev.deliveries.filter((d) => d.payload.includes('MG_INTERNAL'));
      assert.deepEqual(internal.map((d) => d.payload.toString().slice(0, 200)), []);
      const n = dev.deliveries.length;
      dev.send(publishPacket('modelguard/v1/infer/demo', JSON.stringify({ ...(JSON.parse(INFER_BODY) as object), replyTo: 'modelguard/v1/app-a/replies/ok', id: 'ok' }), { qos: 1, id: 9999 }));
      await dev.until(() => dev.deliveries.slice(n).some((d) => d.topic === 'modelguard/v1/app-a/replies/ok'));
      const ok = JSON.parse(dev.deliveries.slice(n).find((d) => d.topic === 'modelguard/v1/app-a/replies/ok')?.payload.toString() ?? '{}') as Record<string, unknown>;
      assert.equal(ok['error'], undefined);
      dev.close();
    } finally {
      await gw.close();
      await acc.close();
    }
  });
});
