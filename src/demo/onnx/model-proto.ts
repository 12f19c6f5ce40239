/**
 * Encodes an ONNX ModelProto from a plain description, writing only the fields a small inference
 * graph needs. Field numbers follow onnx/onnx.proto (IR version 8):
 *
 *   ModelProto      ir_version=1 producer_name=2 producer_version=3 doc_string=6 graph=7 opset_import=8
 *   OperatorSetId   domain=1 version=2
 *   GraphProto      node=1 name=2 initializer=5 input=11 output=12
 *   NodeProto       input=1 output=2 name=3 op_type=4 attribute=5
 *   AttributeProto  name=1 f=2 i=3 type=20 (FLOAT=1, INT=2)
 *   TensorProto     dims=1 data_type=2 name=8 raw_data=9
 *   ValueInfoProto  name=1 type=2 → TypeProto tensor_type=1 → elem_type=1 shape=2 → dim=1 → dim_value=1 | dim_param=2
 */
import { bytes, float, int, message, string, concat } from './protobuf.ts';

/** TensorProto.DataType values used here. */
export const ElemType = { FLOAT: 1, INT64: 7 } as const;
export type ElemType = (typeof ElemType)[keyof typeof ElemType];

export interface Initializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

export interface ValueInfo {
  readonly name: string;
  readonly elemType: ElemType;
  /** A number is a fixed dimension; a string is a symbolic one (e.g. the batch size `N`). */
  readonly shape: readonly (number | string)[];
}

export type Attribute =
  | { readonly name: string; readonly int: number }
  | { readonly name: string; readonly float: number };

export interface Node {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly attributes?: readonly Attribute[];
}

export interface ModelSpec {
  readonly irVersion: number;
  readonly opsetVersion: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString?: string;
  readonly graphName: string;
  readonly nodes: readonly Node[];
  readonly initializers: readonly Initializer[];
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

const ATTR_FLOAT = 1;
const ATTR_INT = 2;

function attribute(a: Attribute): Uint8Array {
  const body = 'int' in a ? [string(1, a.name), int(3, a.int), int(20, ATTR_INT)] : [string(1, a.name), float(2, a.float), int(20, ATTR_FLOAT)];
  return message(5, body);
}

function node(n: Node): Uint8Array {
  const fields: Uint8Array[] = [];
  for (const i of n.inputs) fields.push(string(1, i));
  for (const o of n.outputs) fields.push(string(2, o));
  if (n.name !== undefined) fields.push(string(3, n.name));
  fields.push(string(4, n.op));
  for (const a of n.attributes ?? []) fields.push(attribute(a));
  return message(1, fields);
}

function initializer(t: Initializer): Uint8Array {
  // raw_data is little-endian regardless of the host, as the ONNX spec requires.
  const raw = new Uint8Array(t.data.length * 4);
  const view = new DataView(raw.buffer);
  t.data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  const fields = t.dims.map((d) => int(1, d));
  fields.push(int(2, ElemType.FLOAT), string(8, t.name), bytes(9, raw));
  return message(5, fields);
}

function valueInfo(field: number, v: ValueInfo): Uint8Array {
  const dims = v.shape.map((d) => message(1, [typeof d === 'number' ? int(1, d) : string(2, d)]));
  const tensorType = message(1, [int(1, v.elemType), message(2, dims)]);
  return message(field, [string(1, v.name), message(2, [tensorType])]);
}

/** The serialized model, ready to be written to a `.onnx` file. */
export function encodeModel(spec: ModelSpec): Uint8Array {
  const graph: Uint8Array[] = [
    ...spec.nodes.map(node),
    string(2, spec.graphName),
    ...spec.initializers.map(initializer),
    ...spec.inputs.map((v) => valueInfo(11, v)),
    ...spec.outputs.map((v) => valueInfo(12, v)),
  ];
  const model: Uint8Array[] = [
    int(1, spec.irVersion),
    string(2, spec.producerName),
    string(3, spec.producerVersion),
  ];
  if (spec.docString !== undefined) model.push(string(6, spec.docString));
  model.push(message(7, graph), message(8, [string(1, ''), int(2, spec.opsetVersion)]));
  return concat(model);
}
