import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIO_FEATURE_NAMES, AUDIO_SAMPLE_RATE, audioFeatures } from '../../models/features/audio-bands.js';
import { thermalFeatures } from '../../models/features/thermal-window.js';
import type { ThermalReading } from '../../models/features/thermal-window.js';
import type { InferenceBackend, LoadedModel } from '../../models/inference/backend.js';
import { OnnxRuntimeNodeBackend } from '../../models/inference/onnxruntime-node-backend.js';
import { loadVerifiedModel } from '../../models/registry/model-runner.js';
import type { VerifiedModel } from '../../models/registry/model-runner.js';
import { ErrorCodes } from '../../runtime/errors.js';
import { HIVE_SOUND_DIR, HIVE_THERMAL_DIR, expectApiaryError, readClip } from './helpers.js';

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('hive-sound through loadVerifiedModel (pipeline test on the training clips)', () => {
  let model: VerifiedModel;
  beforeAll(async () => {
    model = await loadVerifiedModel({ dir: HIVE_SOUND_DIR, backend: new OnnxRuntimeNodeBackend() });
  });
  afterAll(async () => {
    await model.close();
  });

  it.each([
    ['Active.dat', 'normal'],
    ['Pre-Swarm.dat', 'pre-swarm'],
    ['Swarm.dat', 'swarm'],
  ] as const)('%s classifies as %s with probabilities summing to 1', async (clip, expected) => {
    const prediction = await model.predict(audioFeatures(readClip(clip), AUDIO_SAMPLE_RATE));
    expect(Object.keys(prediction.probabilities)).toEqual(['normal', 'pre-swarm', 'swarm']);
    expect(Math.abs(sum(Object.values(prediction.probabilities)) - 1)).toBeLessThan(1e-5);
    expect(prediction.label).toBe(expected);
    expect(prediction.inputHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives the same inputHash for the same input and a different one for another clip', async () => {
    const active = audioFeatures(readClip('Active.dat'), AUDIO_SAMPLE_RATE);
    const a = await model.predict(active);
    const b = await model.predict({ ...active });
    const swarm = await model.predict(audioFeatures(readClip('Swarm.dat'), AUDIO_SAMPLE_RATE));
    expect(b.inputHash).toBe(a.inputHash);
    expect(swarm.inputHash).not.toBe(a.inputHash);
  });

  it('exposes the verified manifest and hash', () => {
    expect(model.manifest.name).toBe('hive-sound');
    expect(model.sha256).toBe(model.manifest.sha256);
    expect(model.manifest.inputs[0]?.features.map((f) => f.name)).toEqual(AUDIO_FEATURE_NAMES);
  });

  it('refuses a missing feature with MODEL_INPUT_INVALID naming it', async () => {
    const features = audioFeatures(readClip('Active.dat'), AUDIO_SAMPLE_RATE);
    delete features.band_200_300;
    const err = await expectApiaryError(() => model.predict(features), ErrorCodes.MODEL_INPUT_INVALID);
    expect(err.message).toContain('band_200_300');
    expect(err.message).toContain('missing');
  });

  it('refuses NaN and Infinity with MODEL_INPUT_INVALID naming the feature', async () => {
    const features = audioFeatures(readClip('Active.dat'), AUDIO_SAMPLE_RATE);
    const nan = await expectApiaryError(() => model.predict({ ...features, rms_dbfs: Number.NaN }), ErrorCodes.MODEL_INPUT_INVALID);
    expect(nan.message).toContain('rms_dbfs');
    await expectApiaryError(() => model.predict({ ...features, band_0_100: Number.POSITIVE_INFINITY }), ErrorCodes.MODEL_INPUT_INVALID);
  });
});

describe('output validation', () => {
  /** A real manifest and file, but a backend whose outputs we choose. */
  function fakeBackend(output: number[]): InferenceBackend {
    const loaded: LoadedModel = {
      inputNames: ['features'],
      outputNames: ['probabilities'],
      run: () => Promise.resolve({ probabilities: Float32Array.from(output) }),
      close: () => Promise.resolve(),
    };
    return { name: 'fake', load: () => Promise.resolve(loaded) };
  }
  const features = () => audioFeatures(readClip('Swarm.dat'), AUDIO_SAMPLE_RATE);

  it.each([
    ['a NaN', [Number.NaN, 0.5, 0.5]],
    ['a value above 1', [1.5, -0.25, -0.25]],
    ['a sum other than 1', [0.5, 0.2, 0.2]],
    ['the wrong length', [0.5, 0.5]],
  ])('refuses %s with MODEL_OUTPUT_INVALID', async (_what, output) => {
    const model = await loadVerifiedModel({ dir: HIVE_SOUND_DIR, backend: fakeBackend(output) });
    await expectApiaryError(() => model.predict(features()), ErrorCodes.MODEL_OUTPUT_INVALID);
  });
});

describe('hive-thermal through loadVerifiedModel', () => {
  let model: VerifiedModel;
  beforeAll(async () => {
    model = await loadVerifiedModel({ dir: HIVE_THERMAL_DIR, backend: new OnnxRuntimeNodeBackend() });
  });
  afterAll(async () => {
    await model.close();
  });

  /** 24 h at 10-minute intervals; `temp(i)` gives the temperature of reading i. */
  function window(temp: (i: number) => number): ThermalReading[] {
    const start = Date.UTC(2025, 5, 1);
    return Array.from({ length: 144 }, (_, i) => ({ t: start + i * 600_000, temperature: temp(i), humidity: 60 }));
  }

  // The model is trained on real hives (models/training/train-hive-thermal.ts); it is far from certain,
  // so these check the direction, not confident probabilities.
  it('scores a steady brood-nest window above 0.5 and a window swinging 18-28 °C below 0.5', async () => {
    const held = await model.predict(thermalFeatures(window((i) => 34.5 + 0.3 * Math.sin(i / 3))));
    const swinging = await model.predict(thermalFeatures(window((i) => 23 + 5 * Math.sin((2 * Math.PI * i) / 144))));
    expect(held.label).toBe('strong_colony');
    expect(swinging.label).toBe('not_strong_colony');
    expect(held.probabilities.strong_colony).toBeGreaterThan(swinging.probabilities.strong_colony ?? 1);
  });
});
