/**
 * Writes ONNX ModelProto bytes without Python or the onnx package, so the
 * shipped models can be rebuilt by `npm run models:build` on any machine.
 *
 * The schema below is the subset of onnx.proto (package `onnx`, proto2) that a
 * dense classifier needs. Field numbers are copied from onnx/onnx.proto and
 * must never be changed: they are the wire format. Fields we never write are
 * simply left out, which protobuf allows.
 *
 * Determinism: protobufjs encodes fields in declaration order and we pass
 * repeated fields in a fixed order (metadata sorted by key), so the same
 * weights always give the same bytes; the registry's sha256 depends on it.
 */
import protobuf from 'protobufjs';
import type { INamespace, Type } from 'protobufjs';

/** ONNX IR version 8 (2021-07-30): loadable by every onnxruntime since 1.10. */
export const ONNX_IR_VERSION = 8;
/** Default-domain ("ai.onnx") opset; MatMul, Add, Softmax and Sigmoid all have v13 definitions. */
export const ONNX_OPSET_VERSION = 13;
export const ONNX_PRODUCER_NAME = 'apiary';
export const DENSE_INPUT_NAME = 'features';
export const DENSE_OUTPUT_NAME = 'probabilities';

/** TensorProto.DataType.FLOAT (onnx.proto). */
const DATA_TYPE_FLOAT = 1;
/** AttributeProto.AttributeType.INT (onnx.proto). */
const ATTRIBUTE_TYPE_INT = 2;

const ONNX_SUBSET: INamespace = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            ir_version: { type: 'int64', id: 1 },
            producer_name: { type: 'string', id: 2 },
            producer_version: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            model_version: { type: 'int64', id: 5 },
            doc_string: { type: 'string', id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            opset_import: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            metadata_props: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
        OperatorSetIdProto: {
          fields: {
            domain: { type: 'string', id: 1 },
            version: { type: 'int64', id: 2 },
          },
        },
        StringStringEntryProto: {
          fields: {
            key: { type: 'string', id: 1 },
            value: { type: 'string', id: 2 },
          },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            doc_string: { type: 'string', id: 10 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            op_type: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            doc_string: { type: 'string', id: 6 },
            domain: { type: 'string', id: 7 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            doc_string: { type: 'string', id: 13 },
            // An enum (AttributeType) in onnx.proto; enums travel as varints, so int32 is wire-identical.
            type: { type: 'int32', id: 20 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            data_type: { type: 'int32', id: 2 },
            name: { type: 'string', id: 8 },
            // Little-endian IEEE 754 bytes: exact float32 values, no varint/packing choices.
            raw_data: { type: 'bytes', id: 9 },
            doc_string: { type: 'string', id: 12 },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { type: 'string', id: 1 },
            type: { type: 'TypeProto', id: 2 },
            doc_string: { type: 'string', id: 3 },
          },
        },
        TypeProto: {
          fields: {
            // Member of `oneof value` in onnx.proto; a oneof is wire-identical to an optional field.
            tensor_type: { type: 'TypeProto.Tensor', id: 1 },
            denotation: { type: 'string', id: 6 },
          },
          nested: {
            Tensor: {
              fields: {
                elem_type: { type: 'int32', id: 1 },
                shape: { type: 'TensorShapeProto', id: 2 },
              },
            },
          },
        },
        TensorShapeProto: {
          fields: {
            dim: { rule: 'repeated', type: 'TensorShapeProto.Dimension', id: 1 },
          },
          nested: {
            Dimension: {
              fields: {
                // `oneof value { dim_value = 1; dim_param = 2; }` in onnx.proto.
                dim_value: { type: 'int64', id: 1 },
                dim_param: { type: 'string', id: 2 },
                denotation: { type: 'string', id: 3 },
              },
            },
          },
        },
      },
    },
  },
};

let modelProtoType: Type | undefined;

/** The `onnx.ModelProto` type of the subset schema (built once, on first use). */
export function onnxModelProto(): Type {
  modelProtoType ??= protobuf.Root.fromJSON(ONNX_SUBSET).lookupType('onnx.ModelProto');
  return modelProtoType;
}

/** Plain-object view of a decoded model, for inspection and tests. */
export interface DecodedOnnxModel {
  ir_version?: number;
  producer_name?: string;
  opset_import?: { domain?: string; version?: number }[];
  metadata_props?: { key?: string; value?: string }[];
  graph?: {
    name?: string;
    node?: { op_type?: string; input?: string[]; output?: string[] }[];
    input?: { name?: string }[];
    output?: { name?: string }[];
    initializer?: { name?: string; dims?: number[] }[];
  };
}

export function decodeOnnxModel(bytes: Uint8Array): DecodedOnnxModel {
  const type = onnxModelProto();
  const decoded: DecodedOnnxModel = type.toObject(type.decode(bytes), { longs: Number, defaults: false });
  return decoded;
}

export interface DenseClassifierSpec {
  /** Row-major weights, `weights[i][j]` maps input feature i to output j: shape [n, k]. */
  readonly weights: readonly (readonly number[])[];
  /** One bias per output: shape [k]. */
  readonly bias: readonly number[];
  readonly modelName: string;
  readonly modelVersion: string;
  readonly docString?: string;
  /** Extra metadata_props; `name` and `version` are always set from modelName/modelVersion. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * features [1, n] -> MatMul(W [n, k]) -> Add(b [k]) -> Softmax (k >= 2) or
 * Sigmoid (k = 1) -> probabilities [1, k]. Returns serialized ModelProto bytes.
 *
 * Throws RangeError on malformed weights: that is a bug in the caller (the
 * build script), not a condition a running node can meet.
 */
export function buildDenseClassifierOnnx(spec: DenseClassifierSpec): Uint8Array {
  const n = spec.weights.length;
  const k = spec.bias.length;
  if (n < 1 || k < 1) throw new RangeError(`dense classifier needs n >= 1 and k >= 1, got n=${n}, k=${k}`);
  const flatW: number[] = [];
  spec.weights.forEach((row, i) => {
    if (row.length !== k) throw new RangeError(`weights row ${i} has ${row.length} columns, expected ${k} (bias length)`);
    flatW.push(...row);
  });
  for (const [what, values] of [['weights', flatW], ['bias', spec.bias]] as const) {
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new RangeError(`${what} value #${bad} is not finite (${values[bad]})`);
  }

  const floatTensor = (name: string, dims: number[], values: readonly number[]) => ({
    dims,
    data_type: DATA_TYPE_FLOAT,
    name,
    raw_data: float32LittleEndian(values),
  });
  const floatValueInfo = (name: string, dims: number[]) => ({
    name,
    type: { tensor_type: { elem_type: DATA_TYPE_FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
  });

  const activation =
    k >= 2
      ? {
          input: ['logits'],
          output: [DENSE_OUTPUT_NAME],
          name: 'softmax',
          op_type: 'Softmax',
          // -1 is the opset-13 default; written anyway so the file states it.
          attribute: [{ name: 'axis', type: ATTRIBUTE_TYPE_INT, i: -1 }],
        }
      : { input: ['logits'], output: [DENSE_OUTPUT_NAME], name: 'sigmoid', op_type: 'Sigmoid' };

  const metadata: Record<string, string> = { ...spec.metadata, name: spec.modelName, version: spec.modelVersion };
  const model = {
    ir_version: ONNX_IR_VERSION,
    producer_name: ONNX_PRODUCER_NAME,
    doc_string: spec.docString ?? '',
    graph: {
      node: [
        { input: [DENSE_INPUT_NAME, 'W'], output: ['matmul_out'], name: 'matmul', op_type: 'MatMul' },
        { input: ['matmul_out', 'b'], output: ['logits'], name: 'add_bias', op_type: 'Add' },
        activation,
      ],
      name: spec.modelName,
      initializer: [floatTensor('W', [n, k], flatW), floatTensor('b', [k], spec.bias)],
      input: [floatValueInfo(DENSE_INPUT_NAME, [1, n])],
      output: [floatValueInfo(DENSE_OUTPUT_NAME, [1, k])],
    },
    // No domain: an absent (empty) domain means the default ai.onnx operator set.
    opset_import: [{ version: ONNX_OPSET_VERSION }],
    metadata_props: Object.keys(metadata)
      .sort()
      .map((key) => ({ key, value: metadata[key] })),
  };

  const type = onnxModelProto();
  const problem = type.verify(model);
  if (problem) throw new RangeError(`internal ONNX writer error: ${problem}`);
  // Copy out of protobufjs' pooled buffer so callers own plain bytes.
  return Uint8Array.from(type.encode(type.fromObject(model)).finish());
}

function float32LittleEndian(values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}
