/**
 * The pass-through authorizer: what a gRPC call forwarded unchanged to a model's backend needs.
 *
 * Two things are checked, so that naming a public model in `x-modelguard-model` buys nothing else:
 *
 * 1. The operation. Methods that change or inspect the server rather than use a model — Triton's
 *    and KServe's repository (load, unload, index), shared-memory registration, trace and log
 *    settings, statistics — need the App's `admin` permission, as the same REST paths do over HTTP
 *    (`/v2/repository/...`, `/v2/systemsharedmemory/...`, `/v2/trace`, `/v2/logging`). The method
 *    name is compared case-folded and whatever the service, so a renamed service or an odd case
 *    cannot slip an admin method through as "infer".
 * 2. Every model the message names. The message is decoded just enough to read its model-name
 *    fields (every occurrence: protobuf lets a field repeat and the server takes the last), and
 *    each must be the backend name of the model the call was authorized for. A ModelStreamInfer
 *    message naming a private model behind a public one in the metadata is refused.
 *
 * Field numbers are from Triton's grpc_service.proto (triton-inference-server/common) and the
 * Open Inference Protocol's grpc_predict_v2.proto, which agree on the shared messages.
 */
import { echo, MGError } from '../core/errors.ts';
import type { AppOperation, ModelSnapshot } from '../core/snapshot.ts';

interface MethodRule {
  readonly permission: AppOperation;
  /** Top-level string fields of the request message that name a model. */
  readonly modelFields: readonly number[];
  /** Whether the message must name exactly the authorized model (an empty name is refused too). */
  readonly modelRequired: boolean;
}

const USE_MODEL = (field: number, permission: AppOperation = 'infer'): MethodRule => ({ permission, modelFields: [field], modelRequired: true });
const ADMIN = (...fields: number[]): MethodRule => ({ permission: 'admin', modelFields: fields, modelRequired: false });

/** Known methods of `inference.GRPCInferenceService`, keyed by lower-cased method name. */
const RULES: ReadonlyMap<string, MethodRule> = new Map([
  ['modelinfer', USE_MODEL(1)], // ModelInferRequest.model_name = 1
  ['modelstreaminfer', USE_MODEL(1)], // stream of ModelInferRequest
  ['modelready', USE_MODEL(1, 'metadata')], // ModelReadyRequest.name = 1
  ['modelmetadata', USE_MODEL(1, 'metadata')], // ModelMetadataRequest.name = 1
  ['modelconfig', USE_MODEL(1, 'metadata')], // ModelConfigRequest.name = 1
  ['modelstatistics', ADMIN(1)], // ModelStatisticsRequest.name = 1 (empty: every model on the server)
  ['repositoryindex', ADMIN()],
  ['repositorymodelload', ADMIN(2)], // RepositoryModelLoadRequest.model_name = 2
  ['repositorymodelunload', ADMIN(2)], // RepositoryModelUnloadRequest.model_name = 2
  ['systemsharedmemorystatus', ADMIN()],
  ['systemsharedmemoryregister', ADMIN()],
  ['systemsharedmemoryunregister', ADMIN()],
  ['cudasharedmemorystatus', ADMIN()],
  ['cudasharedmemoryregister', ADMIN()],
  ['cudasharedmemoryunregister', ADMIN()],
  ['tracesetting', ADMIN(2)], // TraceSettingRequest.model_name = 2
  ['trace', ADMIN()],
  ['logsettings', ADMIN()],
]);

/**
 * Words that mark a method of another service as administrative, as HTTP refuses any `load` or
 * `unload` path segment: `RepositoryModelLoad`, `load_model`, `UnloadAll`, `SetTrace`, …
 */
const ADMIN_WORDS = new Set(['repository', 'load', 'unload', 'reload', 'trace', 'logging', 'statistics', 'sharedmemory', 'logsettings']);

function isAdminName(method: string): boolean {
  // camelCase, PascalCase and snake_case words, lower-cased; adjacent pairs catch SharedMemory, LogSettings.
  const words = method.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter((w) => w !== '');
  return words.some((w, i) => ADMIN_WORDS.has(w) || ADMIN_WORDS.has(w + (words[i + 1] ?? '')));
}

/** What the pass-through of `path` (`/package.Service/Method`) needs before it may be forwarded. */
export interface PassthroughNeeds {
  readonly permission: AppOperation;
  /** Model names the message carries (as the backend knows them). */
  readonly named: readonly string[];
  readonly modelRequired: boolean;
}

export function passthroughNeeds(path: string, message: Uint8Array): PassthroughNeeds {
  const i = path.lastIndexOf('/');
  const method = i < 0 ? path : path.slice(i + 1);
  const rule = RULES.get(method.toLowerCase());
  if (rule === undefined) {
    // A method of another service: its message is opaque; the operation follows its name.
    return { permission: isAdminName(method) ? 'admin' : 'infer', named: [], modelRequired: false };
  }
  const named: string[] = [];
  for (const f of rule.modelFields) named.push(...stringFields(message, f));
  return { permission: rule.permission, named, modelRequired: rule.modelRequired };
}

/**
 * Refuses (MG_FORBIDDEN) a message naming any model other than the backend name of `model`, the one
 * the call was authorized for. Methods that need a model refuse a message naming none.
 */
export function checkNamedModels(needs: PassthroughNeeds, model: ModelSnapshot): void {
  if (needs.modelRequired && needs.named.length === 0) {
    throw new MGError('MG_BAD_REQUEST', `the message names no model; it must name ${echo(model.backendModel)}, the backend model of ${echo(model.name)} (x-modelguard-model)`);
  }
  for (const n of needs.named) {
    if (n === '' && !needs.modelRequired) continue;
    if (n !== model.backendModel) {
      throw new MGError('MG_FORBIDDEN', `the message names model ${echo(n)}, but the call is authorized for ${echo(model.name)} (backend model ${echo(model.backendModel)}) by x-modelguard-model`);
    }
  }
}

/** Deepest varint a valid message holds (10 bytes: a 64-bit value). */
const MAX_VARINT_BYTES = 10;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function malformed(why: string): MGError {
  return new MGError('MG_BAD_REQUEST', `not a valid protobuf message (${why})`);
}

/**
 * Every value of top-level string field `field` in a protobuf message, in order. Only the top level
 * is walked (no recursion, so no depth to bound); each length is checked against the end of the
 * message; groups (wire types 3/4, absent from proto3) and invalid UTF-8 are refused, as a proto3
 * server refuses them.
 */
export function stringFields(buf: Uint8Array, field: number): string[] {
  const out: string[] = [];
  let i = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let n = 0; n < MAX_VARINT_BYTES; n++) {
      if (i >= buf.length) throw malformed('truncated varint');
      const b = buf[i++] as number;
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return value;
    }
    throw malformed('varint longer than 10 bytes');
  };
  while (i < buf.length) {
    const tag = varint();
    const wire = tag % 8;
    const number = Math.floor(tag / 8);
    if (number === 0 || number > 0x1fffffff) throw malformed(`field number ${number}`);
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        i += 8;
        break;
      case 5:
        i += 4;
        break;
      case 2: {
        const len = varint();
        if (len > buf.length - i) throw malformed('length past the end of the message');
        if (number === field) {
          try {
            out.push(UTF8.decode(buf.subarray(i, i + len)));
          } catch {
            throw malformed(`field ${field} is not valid UTF-8`);
          }
        }
        i += len;
        break;
      }
      default:
        throw malformed(`wire type ${wire}`);
    }
    if (i > buf.length) throw malformed('field past the end of the message');
  }
  return out;
}
