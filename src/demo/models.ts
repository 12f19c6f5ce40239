/**
 * The models a demo server serves. Each validates a request against its signature before the
 * request queues (bad input never costs accelerator time), and returns the work to run while it
 * holds a slot.
 */
import { badRequest } from './http.ts';
import { IRIS_CLASS_COUNT, IRIS_FEATURE_COUNT, IRIS_MODEL_NAME, type IrisModel } from './onnx/iris-model.ts';
import { hashString, seededRandom, type Random, type ServiceTime } from './service-time.ts';
import { elementValue, selectOutputs, type InferRequest, type OutputTensor, type TensorMeta } from './tensors.ts';

export type Work = () => readonly OutputTensor[] | Promise<readonly OutputTensor[]>;

export interface DemoModel {
  readonly name: string;
  readonly versions: readonly string[];
  /** KServe metadata `platform`. */
  readonly platform: string;
  readonly inputs: readonly TensorMeta[];
  readonly outputs: readonly TensorMeta[];
  /** How long a request holds its slot; for a real model, the minimum (real compute counts towards it). */
  serviceTime: ServiceTime;
  /** Per-model seeded generator for service-time samples. */
  readonly random: Random;
  /** Validates the request for this model (throws a 400 HttpError) and returns the work to run. */
  prepare(request: InferRequest): Work;
}

export const MODEL_VERSION = '1';

/** Rows a request carries: dim 0 of its first input (1 for a scalar or no input). */
export function requestRows(request: InferRequest): number {
  const d0 = request.inputs[0]?.shape[0];
  return d0 === undefined || d0 < 1 ? 1 : d0;
}

function checkWanted(model: Pick<DemoModel, 'outputs'>, wanted: readonly string[] | undefined): void {
  for (const name of wanted ?? []) {
    if (!model.outputs.some((o) => o.name === name)) {
      throw badRequest(`unknown output "${name}"; this model has ${model.outputs.map((o) => o.name).join(', ')}`);
    }
  }
}

/**
 * A model with no real compute. It accepts any input tensors and answers one deterministic FP32
 * tensor `output` [B,4]: per row of the first input (B = its first dimension when rank ≥ 2, else 1)
 * the sum, mean, min and max of the row's values (booleans count 1/0, strings their length). So a
 * test can tell from the answer that its own payload reached the model intact.
 */
export function simulatedModel(name: string, serviceTime: ServiceTime, seed: number): DemoModel {
  const model: DemoModel = {
    name,
    versions: [MODEL_VERSION],
    platform: 'modelguard_simulated',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, -1] }],
    outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 4] }],
    serviceTime,
    random: seededRandom(seed ^ hashString(name)),
    prepare(request) {
      checkWanted(model, request.outputs);
      const first = request.inputs[0];
      if (!first) throw badRequest('inputs must be a non-empty array');
      return () => {
        const rows = first.shape.length >= 2 ? (first.shape[0] ?? 1) : 1;
        const width = rows === 0 ? 0 : first.data.length / rows;
        const data: number[] = [];
        for (let r = 0; r < rows; r++) {
          let sum = 0;
          let min = width > 0 ? Infinity : 0;
          let max = width > 0 ? -Infinity : 0;
          for (let k = 0; k < width; k++) {
            const v = elementValue(first.data[r * width + k] ?? 0);
            sum += v;
            if (v < min) min = v;
            if (v > max) max = v;
          }
          data.push(sum, width > 0 ? sum / width : 0, min, max);
        }
        return selectOutputs([{ name: 'output', datatype: 'FP32', shape: [rows, 4], data }], request.outputs);
      };
    },
  };
  return model;
}

/**
 * A model that answers every input unchanged, as Triton's identity models do: input `INPUTn` is
 * output `OUTPUTn` (any other name keeps its name), same datatype, shape and bytes. Inputs sent as
 * binary data are answered with their exact bytes, so a test can compare every bit of every tensor
 * that crossed ModelGuard (-0.0, NaN payloads, 2^63−1, BYTES that are not UTF-8).
 */
export function identityModel(name: string, serviceTime: ServiceTime, seed: number): DemoModel {
  const outName = (input: string): string => (/^INPUT\d+$/.test(input) ? `OUTPUT${input.slice(5)}` : input);
  const model: DemoModel = {
    name,
    versions: [MODEL_VERSION],
    platform: 'modelguard_identity',
    // Any datatype and shape: the metadata shows the conventional pair.
    inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1] }],
    outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [-1] }],
    serviceTime,
    random: seededRandom(seed ^ hashString(name)),
    prepare(request) {
      const all: OutputTensor[] = request.inputs.map((t) => ({ name: outName(t.name), datatype: t.datatype, shape: t.shape, data: t.data, raw: t.raw }));
      for (const wanted of request.outputs ?? []) {
        if (!all.some((o) => o.name === wanted)) throw badRequest(`unknown output "${wanted}"; this request's outputs are ${all.map((o) => o.name).join(', ')}`);
      }
      return () => selectOutputs(all, request.outputs);
    },
  };
  return model;
}

/** The real Iris classifier behind the KServe API: one FP32 input `input` [N,4]. */
export function irisDemoModel(iris: IrisModel, serviceTime: ServiceTime, seed: number): DemoModel {
  const model: DemoModel = {
    name: IRIS_MODEL_NAME,
    versions: [MODEL_VERSION],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, IRIS_FEATURE_COUNT] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, IRIS_CLASS_COUNT] },
      { name: 'label', datatype: 'INT64', shape: [-1] },
    ],
    serviceTime,
    random: seededRandom(seed ^ hashString(IRIS_MODEL_NAME)),
    prepare(request) {
      checkWanted(model, request.outputs);
      const input = request.inputs[0];
      if (request.inputs.length !== 1 || input?.name !== 'input') throw badRequest('iris takes exactly one input named "input"');
      if (input.datatype !== 'FP32') throw badRequest(`input "input" must be FP32, got ${input.datatype}`);
      const [n, width] = input.shape;
      if (input.shape.length !== 2 || n === undefined || n < 1 || width !== IRIS_FEATURE_COUNT) {
        throw badRequest(`input "input" must have shape [N,${IRIS_FEATURE_COUNT}] with N ≥ 1, got [${input.shape.join(',')}]`);
      }
      const rows = Float32Array.from(input.data as readonly number[]);
      return async () => {
        const result = await iris.run(rows, n);
        const all: OutputTensor[] = [
          { name: 'probabilities', datatype: 'FP32', shape: [n, IRIS_CLASS_COUNT], data: Array.from(result.probabilities) },
          { name: 'label', datatype: 'INT64', shape: [n], data: result.labels },
        ];
        return selectOutputs(all, request.outputs);
      };
    },
  };
  return model;
}
