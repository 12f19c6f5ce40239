/**
 * The real model of the demo server: a softmax-regression Iris classifier, trained at startup,
 * written as an ONNX file into a cache directory and run by onnxruntime-node.
 *
 *   input [N,4] FP32 ─MatMul(W[4,3])─Add(B[3])─▶ logits ─Softmax(axis 1)─▶ probabilities [N,3] FP32
 *                                                        └─ArgMax(axis 1)─▶ label [N] INT64
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { IRIS_FEATURES, irisLabel } from '../iris-data.ts';
import { ElemType, encodeModel } from './model-proto.ts';
import { trainSoftmaxRegression, type LinearClassifier } from './train.ts';

export const IRIS_MODEL_NAME = 'iris';
export const IRIS_FEATURE_COUNT = 4;
export const IRIS_CLASS_COUNT = 3;

export interface IrisResult {
  /** Row-major [N,3]. */
  readonly probabilities: Float32Array;
  /** Class index per row (0 setosa, 1 versicolor, 2 virginica). */
  readonly labels: number[];
}

export interface IrisModel {
  /** Where the .onnx file lives (inside the cache directory). */
  readonly path: string;
  readonly classifier: LinearClassifier;
  /** Runs N rows (row-major [N,4]) through onnxruntime. */
  run(rows: Float32Array, n: number): Promise<IrisResult>;
}

export function defaultCacheDir(): string {
  return join(tmpdir(), 'modelguard-demo');
}

/** Trains the classifier on the bundled data set (deterministic, a few milliseconds). */
export function trainIris(): LinearClassifier {
  return trainSoftmaxRegression(IRIS_FEATURES, IRIS_FEATURES.map((_, i) => irisLabel(i)), IRIS_CLASS_COUNT);
}

/** The classifier as ONNX ModelProto bytes (IR 8, opset 13). */
export function buildIrisOnnx(classifier: LinearClassifier): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetVersion: 13,
    producerName: 'modelguard-demo',
    producerVersion: '1',
    docString: 'Iris softmax regression trained by ModelGuard at startup',
    graphName: 'iris',
    nodes: [
      { op: 'MatMul', name: 'matmul', inputs: ['input', 'W'], outputs: ['xw'] },
      { op: 'Add', name: 'add', inputs: ['xw', 'B'], outputs: ['logits'] },
      { op: 'Softmax', name: 'softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: [{ name: 'axis', int: 1 }] },
      {
        op: 'ArgMax',
        name: 'argmax',
        inputs: ['logits'],
        outputs: ['label'],
        attributes: [{ name: 'axis', int: 1 }, { name: 'keepdims', int: 0 }],
      },
    ],
    initializers: [
      { name: 'W', dims: [classifier.features, classifier.classes], data: classifier.weights },
      { name: 'B', dims: [classifier.classes], data: classifier.bias },
    ],
    inputs: [{ name: 'input', elemType: ElemType.FLOAT, shape: ['N', classifier.features] }],
    outputs: [
      { name: 'probabilities', elemType: ElemType.FLOAT, shape: ['N', classifier.classes] },
      { name: 'label', elemType: ElemType.INT64, shape: ['N'] },
    ],
  });
}

/**
 * Writes the file once per content hash. The write goes to a temporary name and is renamed into
 * place, so concurrent processes sharing the cache never load a half-written model.
 */
async function writeCached(dir: string, bytes: Uint8Array): Promise<string> {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const path = join(dir, `iris-${hash}.onnx`);
  const exists = await stat(path).then((s) => s.size === bytes.length, () => false);
  if (!exists) {
    await mkdir(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  }
  return path;
}

async function createIrisModel(cacheDir: string): Promise<IrisModel> {
  const classifier = trainIris();
  const path = await writeCached(cacheDir, buildIrisOnnx(classifier));
  // One thread: the graph is tiny, and on an edge box the other cores belong to other work.
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  return {
    path,
    classifier,
    async run(rows, n) {
      const out = await session.run({ input: new ort.Tensor('float32', rows, [n, IRIS_FEATURE_COUNT]) });
      const probs = out['probabilities'];
      const label = out['label'];
      if (!probs || !label) throw new Error('iris model returned no outputs');
      const labelData = label.data;
      const labels = labelData instanceof BigInt64Array ? Array.from(labelData, Number) : Array.from(labelData as ArrayLike<number>);
      return { probabilities: probs.data as Float32Array, labels };
    },
  };
}

// One session per cache directory per process: starting many demo servers in a test run stays cheap,
// and onnxruntime sessions may run concurrently. Sessions live as long as the process.
const loaded = new Map<string, Promise<IrisModel>>();

/** Trains, writes and loads the Iris model, or returns the one this process already loaded. */
export function loadIrisModel(cacheDir: string = defaultCacheDir()): Promise<IrisModel> {
  let model = loaded.get(cacheDir);
  if (!model) {
    model = createIrisModel(cacheDir);
    loaded.set(cacheDir, model);
    model.catch(() => loaded.delete(cacheDir));
  }
  return model;
}
