/**
 * The KServe v2 (Open Inference Protocol) gRPC wire format: the published .proto loaded with
 * protobufjs, and the shapes of its decoded messages. Shared by the gRPC ingress, the gRPC backend
 * client and the demo server's gRPC listener.
 *
 * protobufjs rather than @grpc/proto-loader: grpc-js then carries raw bytes (identity
 * serializers), so ModelGuard decodes the message itself, answers a malformed one with
 * INVALID_ARGUMENT and its own trailer (grpc-js would answer INTERNAL), checks sizes against
 * per-model limits, and forwards pass-through messages without knowing their schema.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export const SERVICE = 'inference.GRPCInferenceService';

const root = new protobuf.Root().loadSync(fileURLToPath(new URL('./grpc_predict_v2.proto', import.meta.url)), { keepCase: true });

function type(name: string): protobuf.Type {
  return root.lookupType(`inference.${name}`);
}

/** A decoded int64/uint64: a number, or a Long object for values protobufjs keeps exact. */
export type Int64 = number | { toNumber(): number; toString(): string; unsigned?: boolean };

export interface PInferParameter {
  readonly parameter_choice?: string;
  readonly bool_param?: boolean;
  readonly int64_param?: Int64;
  readonly string_param?: string;
}

export type PParameters = Readonly<Record<string, PInferParameter>>;

export interface PTensorContents {
  readonly bool_contents: readonly boolean[];
  readonly int_contents: readonly number[];
  readonly int64_contents: readonly Int64[];
  readonly uint_contents: readonly number[];
  readonly uint64_contents: readonly Int64[];
  readonly fp32_contents: readonly number[];
  readonly fp64_contents: readonly number[];
  readonly bytes_contents: readonly Uint8Array[];
}

export interface PTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly Int64[];
  readonly parameters: PParameters;
  readonly contents: PTensorContents | null;
}

export interface PInferRequest {
  readonly model_name: string;
  readonly model_version: string;
  readonly id: string;
  readonly parameters: PParameters;
  readonly inputs: readonly PTensor[];
  readonly outputs: readonly { readonly name: string; readonly parameters: PParameters }[];
  readonly raw_input_contents: readonly Uint8Array[];
}

export interface PInferResponse {
  readonly model_name: string;
  readonly model_version: string;
  readonly id: string;
  readonly parameters: PParameters;
  readonly outputs: readonly PTensor[];
  readonly raw_output_contents: readonly Uint8Array[];
}

export interface PModelRef {
  readonly name: string;
  readonly version: string;
}

export interface PModelMetadata {
  readonly name: string;
  readonly versions: readonly string[];
  readonly platform: string;
  readonly inputs: readonly { readonly name: string; readonly datatype: string; readonly shape: readonly Int64[] }[];
  readonly outputs: readonly { readonly name: string; readonly datatype: string; readonly shape: readonly Int64[] }[];
}

export interface PServerMetadata {
  readonly name: string;
  readonly version: string;
  readonly extensions: readonly string[];
}

/** Encode/decode pair for one message type (plain objects in, decoded messages out). */
export interface Codec<T> {
  decode(buf: Uint8Array): T;
  encode(value: unknown): Buffer;
}

function codec<T>(name: string): Codec<T> {
  const t = type(name);
  return {
    // A plain Uint8Array view: protobufjs's Buffer reader clamps over-long string lengths instead of
    // refusing them, its generic reader checks every length against the message's end.
    decode: (buf) => t.decode(Buffer.isBuffer(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : buf) as unknown as T,
    encode: (value) => {
      const bytes = t.encode(value as protobuf.Message).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
  };
}

export const wire = {
  ServerLiveResponse: codec<{ live: boolean }>('ServerLiveResponse'),
  ServerReadyResponse: codec<{ ready: boolean }>('ServerReadyResponse'),
  ModelReadyRequest: codec<PModelRef>('ModelReadyRequest'),
  ModelReadyResponse: codec<{ ready: boolean }>('ModelReadyResponse'),
  ServerMetadataResponse: codec<PServerMetadata>('ServerMetadataResponse'),
  ModelMetadataRequest: codec<PModelRef>('ModelMetadataRequest'),
  ModelMetadataResponse: codec<PModelMetadata>('ModelMetadataResponse'),
  ModelInferRequest: codec<PInferRequest>('ModelInferRequest'),
  ModelInferResponse: codec<PInferResponse>('ModelInferResponse'),
} as const;

/** Full method path of one of the service's RPCs. */
export function methodPath(method: string): string {
  return `/${SERVICE}/${method}`;
}

export const METHODS = ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer'] as const;
export type Method = (typeof METHODS)[number];

/** The .proto file, for clients in tests and examples. */
export const PROTO_PATH = fileURLToPath(new URL('./grpc_predict_v2.proto', import.meta.url));
