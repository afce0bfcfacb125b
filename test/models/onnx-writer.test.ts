import { describe, expect, it } from 'vitest';
import { OnnxRuntimeNodeBackend } from '../../models/inference/onnxruntime-node-backend.js';
import { ONNX_IR_VERSION, ONNX_OPSET_VERSION, buildDenseClassifierOnnx, decodeOnnxModel } from '../../models/onnx/onnx-writer.js';
import { ErrorCodes } from '../../runtime/errors.js';
import { expectApiaryError } from './helpers.js';

const W = [
  [0.5, -1.25],
  [2.0, 0.75],
  [-0.3, 0.1],
];
const B = [0.1, -0.2];

/** Plain float64 softmax(xW + b), independent of the writer. */
function softmaxReference(x: number[]): number[] {
  const logits = B.map((b, c) => b + x.reduce((acc, xi, i) => acc + xi * (W[i]?.[c] ?? Number.NaN), 0));
  const max = Math.max(...logits);
  const exps = logits.map((z) => Math.exp(z - max));
  const sum = exps.reduce((a, e) => a + e, 0);
  return exps.map((e) => e / sum);
}

describe('buildDenseClassifierOnnx', () => {
  it('writes a 3-feature/2-class softmax model that onnxruntime-node runs like the TypeScript maths', async () => {
    const bytes = buildDenseClassifierOnnx({ weights: W, bias: B, modelName: 'test-dense', modelVersion: '1.2.3' });
    const model = await new OnnxRuntimeNodeBackend().load(bytes);
    try {
      expect(model.inputNames).toEqual(['features']);
      expect(model.outputNames).toEqual(['probabilities']);
      const inputs = [
        [0, 0, 0],
        [1, 2, 3],
        [-1.5, 0.25, 4],
        [3, -2, 0.5],
      ];
      for (const x of inputs) {
        const out = await model.run({ features: { data: Float32Array.from(x), dims: [1, 3] } });
        const probs = out.probabilities;
        expect(probs).toBeInstanceOf(Float32Array);
        const expected = softmaxReference(x);
        expect(probs?.length).toBe(2);
        expected.forEach((p, i) => expect(Math.abs((probs?.[i] ?? Number.NaN) - p)).toBeLessThan(1e-5));
      }
    } finally {
      await model.close();
    }
  });

  it('writes a sigmoid model for a single output', async () => {
    const bytes = buildDenseClassifierOnnx({ weights: [[2], [-1]], bias: [0.5], modelName: 't', modelVersion: '0.0.1' });
    const model = await new OnnxRuntimeNodeBackend().load(bytes);
    try {
      const out = await model.run({ features: { data: Float32Array.from([1, 3]), dims: [1, 2] } });
      const z = 2 * 1 - 1 * 3 + 0.5;
      expect(Math.abs((out.probabilities?.[0] ?? Number.NaN) - 1 / (1 + Math.exp(-z)))).toBeLessThan(1e-6);
    } finally {
      await model.close();
    }
  });

  it('is deterministic: the same weights give identical bytes, other weights do not', () => {
    const spec = { weights: W, bias: B, modelName: 'test-dense', modelVersion: '1.2.3', metadata: { b: '2', a: '1' } };
    const first = buildDenseClassifierOnnx(spec);
    const second = buildDenseClassifierOnnx({ ...spec, metadata: { a: '1', b: '2' } });
    expect(Buffer.from(second).equals(Buffer.from(first))).toBe(true);
    const changed = buildDenseClassifierOnnx({ ...spec, bias: [0.1, -0.2000001] });
    expect(Buffer.from(changed).equals(Buffer.from(first))).toBe(false);
  });

  it('records ir_version, opset, producer and name/version metadata', () => {
    const decoded = decodeOnnxModel(buildDenseClassifierOnnx({ weights: W, bias: B, modelName: 'test-dense', modelVersion: '1.2.3' }));
    expect(decoded.ir_version).toBe(ONNX_IR_VERSION);
    expect(decoded.producer_name).toBe('apiary');
    expect(decoded.opset_import).toEqual([{ version: ONNX_OPSET_VERSION }]); // default domain
    expect(decoded.metadata_props).toEqual([
      { key: 'name', value: 'test-dense' },
      { key: 'version', value: '1.2.3' },
    ]);
    expect(decoded.graph?.node?.map((n) => n.op_type)).toEqual(['MatMul', 'Add', 'Softmax']);
    expect(decoded.graph?.initializer?.map((t) => [t.name, t.dims])).toEqual([
      ['W', [3, 2]],
      ['b', [2]],
    ]);
  });

  it('rejects ragged or non-finite weights', () => {
    expect(() => buildDenseClassifierOnnx({ weights: [[1, 2], [3]], bias: [0, 0], modelName: 't', modelVersion: '1.0.0' })).toThrow(/row 1/);
    expect(() => buildDenseClassifierOnnx({ weights: [[1, Number.NaN]], bias: [0, 0], modelName: 't', modelVersion: '1.0.0' })).toThrow(/not finite/);
  });

  it('refuses bytes that are not an ONNX model with MODEL_LOAD_FAILED', async () => {
    const err = await expectApiaryError(() => new OnnxRuntimeNodeBackend().load(new TextEncoder().encode('not a model')), ErrorCodes.MODEL_LOAD_FAILED);
    expect(err.cause).toBeDefined();
  });
});
