/** Facts of the KServe v2 / Open Inference Protocol tensor format, shared by validation and the demo server. */

/** Bytes per element of each datatype; BYTES is variable-length (strings). */
export const ELEMENT_SIZE = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  BF16: 2,
  FP32: 4,
  FP64: 8,
  BYTES: 0,
} as const;

export type KserveDatatype = keyof typeof ELEMENT_SIZE;

/**
 * Valid values of the integer datatypes. The 64-bit bounds are doubles (±2^63, 2^64): a JSON number
 * is checked after JSON.parse has rounded it, so values within rounding of a bound pass here, and
 * the exact check happens where a value is re-encoded (src/grpc/tensors.ts, with bigint).
 */
export const INT_RANGE: Partial<Record<KserveDatatype, readonly [number, number]>> = {
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, 2 ** 64],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [-(2 ** 63), 2 ** 63],
};

export function isKserveDatatype(value: unknown): value is KserveDatatype {
  return typeof value === 'string' && Object.hasOwn(ELEMENT_SIZE, value);
}

/**
 * What follows `/v2/models/{model}` in a KServe v2 path, split from its segments (`from` is the index
 * after the model's): the optional `/versions/{v}` and the rest (`[]`, `['ready']`, `['infer']`, …).
 */
export function modelPathTail(seg: readonly string[], from: number): { version: string | undefined; tail: string[] } {
  if (seg[from] === 'versions' && seg[from + 1]) return { version: seg[from + 1], tail: seg.slice(from + 2) };
  return { version: undefined, tail: seg.slice(from) };
}
