/**
 * Confidence of a KServe v2 classification answer, for hard-example offload: the top class
 * probability of each row of the probabilities output, and the lowest of those over the batch (one
 * unsure row makes the whole answer worth a second opinion). Undefined when the answer has no such
 * output: then the edge answer stands.
 */
interface Tensor {
  name?: unknown;
  shape?: unknown;
  data?: unknown;
}

function flat(data: unknown, out: number[]): boolean {
  if (typeof data === 'number') {
    out.push(data);
    return true;
  }
  if (!Array.isArray(data)) return false;
  for (const d of data) if (!flat(d, out)) return false;
  return true;
}

export function answerConfidence(body: Buffer, outputName: string | undefined): number | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const outputs = (doc as { outputs?: unknown }).outputs;
  if (!Array.isArray(outputs)) return undefined;
  const tensors = outputs as Tensor[];
  const t = outputName === undefined ? tensors[0] : tensors.find((o) => o.name === outputName);
  if (t === undefined) return undefined;
  const values: number[] = [];
  if (!flat(t.data, values) || values.length === 0) return undefined;
  const shape = Array.isArray(t.shape) ? (t.shape as unknown[]).filter((n): n is number => typeof n === 'number') : [];
  const classes = shape.length >= 2 ? (shape[shape.length - 1] as number) : values.length;
  if (!(classes > 0) || values.length % classes !== 0) return undefined;
  let lowest = Infinity;
  for (let i = 0; i < values.length; i += classes) {
    let top = -Infinity;
    for (let j = i; j < i + classes; j++) top = Math.max(top, values[j] as number);
    lowest = Math.min(lowest, top);
  }
  return Number.isFinite(lowest) ? lowest : undefined;
}
