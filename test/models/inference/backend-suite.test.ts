/**
 * One suite for every InferenceBackend (onnxruntime-node and onnxruntime-web
 * in WASM), on the shipped models and real inputs; then both backends
 * against each other and against the plain TypeScript evaluation of the same
 * weights (evaluateDense), within 1e-5.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIO_SAMPLE_RATE, audioFeatures } from '../../../models/features/audio-bands.js';
import type { InferenceBackend, LoadedModel } from '../../../models/inference/backend.js';
import { OnnxRuntimeNodeBackend } from '../../../models/inference/onnxruntime-node-backend.js';
import { OnnxRuntimeWebBackend } from '../../../models/inference/onnxruntime-web-backend.js';
import { PROBE_BIAS, PROBE_MODEL_NAME, PROBE_WEIGHTS, probeModelBytes, runSelfTest } from '../../../models/inference/self-test.js';
import { buildDenseClassifierOnnx } from '../../../models/onnx/onnx-writer.js';
import { loadVerifiedModel } from '../../../models/registry/model-runner.js';
import { mulberry32 } from '../../../models/training/softmax-regression.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { HIVE_SOUND_DIR, HIVE_THERMAL_DIR, expectApiaryError, readClip } from '../helpers.js';
import { loadDenseModel, normalise, type DenseModel } from './dense-reference.js';

const TOLERANCE = 1e-5;
const BACKENDS = [
  ['onnxruntime-node', () => new OnnxRuntimeNodeBackend()],
  ['onnxruntime-web', () => new OnnxRuntimeWebBackend()],
] as const satisfies readonly (readonly [string, () => InferenceBackend])[];

const CLIPS = [
  ['Active.dat', 'normal'],
  ['Pre-Swarm.dat', 'pre-swarm'],
  ['Swarm.dat', 'swarm'],
] as const;

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  return Math.max(...Array.from(a, (v, i) => Math.abs(v - (b[i] ?? Number.NaN))));
};

async function run(model: LoadedModel, x: readonly number[]): Promise<Float32Array> {
  const out = await model.run({ features: { data: Float32Array.from(x), dims: [1, x.length] } });
  const probs = out.probabilities;
  if (!probs) throw new Error('no probabilities output');
  return probs;
}

describe.each(BACKENDS)('InferenceBackend %s', (name, create) => {
  const backend = create();

  it('is named after its runtime and passes the self-test', async () => {
    expect(backend.name).toBe(name);
    const result = await runSelfTest(backend);
    expect(result.ok, result.error).toBe(true);
    expect(result.maxError).toBeLessThan(TOLERANCE);
  });

  it('loads both shipped models at once through the verified runner and classifies the training clips', async () => {
    const [sound, thermal] = await Promise.all([loadVerifiedModel({ dir: HIVE_SOUND_DIR, backend }), loadVerifiedModel({ dir: HIVE_THERMAL_DIR, backend })]);
    try {
      for (const [clip, label] of CLIPS) {
        const prediction = await sound.predict(audioFeatures(readClip(clip), AUDIO_SAMPLE_RATE));
        expect(prediction.label).toBe(label);
        expect(Object.values(prediction.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
      const means = Object.fromEntries((thermal.manifest.inputs[0]?.features ?? []).map((f) => [f.name, f.mean]));
      const p = (await thermal.predict(means)).probabilities.strong_colony ?? Number.NaN;
      expect(p).toBeGreaterThan(0);
      expect(p).toBeLessThan(1);
    } finally {
      await Promise.all([sound.close(), thermal.close()]);
    }
  });

  it('refuses bytes that are not an ONNX model with MODEL_LOAD_FAILED', async () => {
    const err = await expectApiaryError(() => backend.load(new TextEncoder().encode('not a model')), ErrorCodes.MODEL_LOAD_FAILED);
    expect(err.message).toContain(name);
    expect(err.hint).toBeDefined();
  });

  it('refuses a missing input and a wrong shape with MODEL_INPUT_INVALID', async () => {
    const model = await backend.load(probeModelBytes());
    try {
      const missing = await expectApiaryError(() => model.run({ other: { data: new Float32Array(2), dims: [1, 2] } }), ErrorCodes.MODEL_INPUT_INVALID);
      expect(missing.message).toContain('"features" is missing');
      await expectApiaryError(() => model.run({ features: { data: new Float32Array(5), dims: [1, 5] } }), ErrorCodes.MODEL_INPUT_INVALID);
    } finally {
      await model.close();
    }
  });

  it('refuses run() after close(), and close() twice is harmless', async () => {
    const model = await backend.load(probeModelBytes());
    expect(Array.from(await run(model, [0, 0]))).toHaveLength(3);
    await model.close();
    await model.close();
    await expectApiaryError(() => run(model, [0, 0]), ErrorCodes.MODEL_LOAD_FAILED);
  });
});

describe('onnxruntime-node and onnxruntime-web agree with each other and with the TypeScript evaluation', () => {
  const node = new OnnxRuntimeNodeBackend();
  const web = new OnnxRuntimeWebBackend();
  const loaded: LoadedModel[] = [];
  afterAll(async () => {
    await Promise.all(loaded.map((m) => m.close()));
  });

  /** Seeded inputs in normalised units: ordinary values, far tails that saturate the outputs, and exact zeros. */
  function inputs(features: number, seed: number): number[][] {
    const random = mulberry32(seed);
    const out: number[][] = [];
    for (let i = 0; i < 300; i += 1) out.push(Array.from({ length: features }, () => (random() - 0.5) * (i < 250 ? 8 : 40)));
    out.push(new Array<number>(features).fill(0), new Array<number>(features).fill(10), new Array<number>(features).fill(-10));
    return out.map((x) => Array.from(Float32Array.from(x)));
  }

  describe.each([
    ['hive-sound', HIVE_SOUND_DIR, 0x50d],
    ['hive-thermal', HIVE_THERMAL_DIR, 0x7e7],
  ] as const)('%s', (modelName, dir, seed) => {
    let dense: DenseModel;
    let onNode: LoadedModel;
    let onWeb: LoadedModel;
    beforeAll(async () => {
      dense = await loadDenseModel(dir);
      [onNode, onWeb] = await Promise.all([node.load(dense.bytes), web.load(dense.bytes)]);
      loaded.push(onNode, onWeb);
    });

    it('has a dense graph the TypeScript reference can read', () => {
      expect(dense.manifest.name).toBe(modelName);
      expect(dense.weights).toHaveLength(dense.manifest.inputs[0]?.features.length ?? -1);
      expect(dense.bias).toHaveLength(dense.manifest.outputs[0]?.labels.length ?? -1);
    });

    it('gives the same outputs on both backends and in TypeScript, within 1e-5, on 303 seeded inputs', async () => {
      let worstBackends = 0;
      let worstReference = 0;
      for (const x of inputs(dense.weights.length, seed)) {
        const [a, b] = await Promise.all([run(onNode, x), run(onWeb, x)]);
        const reference = dense.evaluate(x);
        worstBackends = Math.max(worstBackends, maxAbsDiff(a, b));
        worstReference = Math.max(worstReference, maxAbsDiff(a, reference), maxAbsDiff(b, reference));
      }
      expect(worstBackends).toBeLessThanOrEqual(TOLERANCE);
      expect(worstReference).toBeLessThanOrEqual(TOLERANCE);
    });

  });
});

describe('hive-sound on the real training clips', () => {
  it('gives the same outputs on both backends and in TypeScript, within 1e-5', async () => {
    const dense = await loadDenseModel(HIVE_SOUND_DIR);
    const models = await Promise.all([new OnnxRuntimeNodeBackend().load(dense.bytes), new OnnxRuntimeWebBackend().load(dense.bytes)]);
    try {
      for (const [clip] of CLIPS) {
        const x = normalise(dense.manifest, audioFeatures(readClip(clip), AUDIO_SAMPLE_RATE));
        const [a, b] = await Promise.all(models.map((m) => run(m, x)));
        expect(maxAbsDiff(a ?? [], b ?? [])).toBeLessThanOrEqual(TOLERANCE);
        expect(maxAbsDiff(a ?? [], dense.evaluate(x))).toBeLessThanOrEqual(TOLERANCE);
      }
    } finally {
      await Promise.all(models.map((m) => m.close()));
    }
  });
});

describe('the embedded self-test model', () => {
  it('is the model the ONNX writer makes from PROBE_WEIGHTS and PROBE_BIAS', () => {
    const built = buildDenseClassifierOnnx({ weights: PROBE_WEIGHTS, bias: PROBE_BIAS, modelName: PROBE_MODEL_NAME, modelVersion: '1.0.0' });
    expect(Buffer.from(probeModelBytes()).equals(Buffer.from(built))).toBe(true);
  });
});
