/**
 * Builds the two shipped models into `<outDir>/{hive-sound,hive-thermal}/`:
 * `model.onnx` plus `manifest.json` (with the file's sha256).
 *
 *   npm run models:build        # writes models/hive-sound and models/hive-thermal
 *
 * Deterministic: a seeded PRNG, full-batch gradient descent in a fixed order
 * and a byte-stable ONNX writer, so the same inputs give byte-identical files
 * on the same platform and a changed hash means a changed model. After
 * writing, each model is loaded back through the real registry path
 * (hash check + onnxruntime-node) and compared with the TypeScript maths.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../../runtime/package-root.js';
import { AUDIO_BANDS_HZ, AUDIO_FEATURE_NAMES, AUDIO_FRAME_SIZE, AUDIO_SAMPLE_RATE, audioFeatures, parseOsbhDat } from '../features/audio-bands.js';
import { BROOD_BAND_C, THERMAL_FEATURE_NAMES } from '../features/thermal-window.js';
import { OnnxRuntimeNodeBackend } from '../inference/onnxruntime-node-backend.js';
import { buildDenseClassifierOnnx } from '../onnx/onnx-writer.js';
import { parseManifest, sha256Hex } from '../registry/manifest.js';
import type { ManifestFeature, ModelManifest } from '../registry/manifest.js';
import { loadVerifiedModel } from '../registry/model-runner.js';
import { evaluateDense, mulberry32, roundSig, standardise, trainSoftmaxRegression } from './softmax-regression.js';

const MODEL_VERSION = '0.1.0';
const AUTHORS = ['Apiary contributors'];
const TRAIN_HOP = 256;
const TRAIN_SEED = 0x5eed_b33;
const TRAIN_OPTIONS = { learningRate: 0.1, epochs: 3000, l2: 1e-3 } as const;
const OSBH_SOURCE =
  'github.com/hiveeyes/osbh-audioanalyzer commit df4caf7810c1afb3f4c2074d80d163fbace2183f, resources/2205 ' +
  '(MIT, Copyright (c) 2016 SparkFun Electronics, Inc.; recordings by OSBH contributors)';

/** Clip file -> label; the simulator plays the same clips for modes normal / pre-swarm / swarm. */
const SOUND_CLIPS = [
  { file: 'Active.dat', label: 'normal' },
  { file: 'Pre-Swarm.dat', label: 'pre-swarm' },
  { file: 'Swarm.dat', label: 'swarm' },
] as const;


export interface BuildOptions {
  /** Directory with the OSBH clips; defaults to devices/sim/data/osbh-audio in the package. */
  readonly audioDir?: string;
  readonly log?: (line: string) => void;
}

export interface BuiltModel {
  readonly name: string;
  readonly dir: string;
  readonly sha256: string;
}

export async function buildModels(outDir: string, options: BuildOptions = {}): Promise<BuiltModel[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const audioDir = options.audioDir ?? path.join(packageRoot(), 'devices', 'sim', 'data', 'osbh-audio');
  const built = [await buildHiveSound(outDir, audioDir, log), await buildHiveThermal(outDir, log)];
  log(`done: ${built.map((m) => `${m.name} ${m.sha256.slice(0, 12)}`).join(', ')}`);
  return built;
}

async function buildHiveSound(outDir: string, audioDir: string, log: (line: string) => void): Promise<BuiltModel> {
  log(`hive-sound: reading clips from ${audioDir}`);
  const labels = SOUND_CLIPS.map((c) => c.label);
  const rows: number[][] = [];
  const targets: number[] = [];
  const clipRows: number[][] = [];
  for (const [classIndex, clip] of SOUND_CLIPS.entries()) {
    const file = path.join(audioDir, clip.file);
    const samples = parseOsbhDat(await readFile(file, 'utf8'), file);
    let frames = 0;
    for (let start = 0; start + AUDIO_FRAME_SIZE <= samples.length; start += TRAIN_HOP, frames++) {
      const f = audioFeatures(samples.subarray(start, start + AUDIO_FRAME_SIZE), AUDIO_SAMPLE_RATE);
      rows.push(AUDIO_FEATURE_NAMES.map((name) => f[name] ?? Number.NaN));
      targets.push(classIndex);
    }
    const whole = audioFeatures(samples, AUDIO_SAMPLE_RATE);
    clipRows.push(AUDIO_FEATURE_NAMES.map((name) => whole[name] ?? Number.NaN));
    log(`  ${clip.file} -> ${clip.label}: ${samples.length} samples, ${frames} frames`);
  }

  const { mean, std } = standardise(rows);
  const norm = (row: readonly number[]) => row.map((v, j) => (v - (mean[j] ?? 0)) / (std[j] ?? 1));
  log(`  training softmax regression on ${rows.length} frames x ${AUDIO_FEATURE_NAMES.length} features`);
  const model = trainSoftmaxRegression(rows.map(norm), targets, labels.length, {
    ...TRAIN_OPTIONS,
    random: mulberry32(TRAIN_SEED),
    onEpoch: (epoch, loss) => {
      if (epoch % 500 === 0) log(`    epoch ${epoch}: cross-entropy ${loss.toFixed(5)}`);
    },
  });
  const argmax = (p: readonly number[]) => p.indexOf(Math.max(...p));
  const correct = rows.filter((row, i) => argmax(evaluateDense(model.weights, model.bias, norm(row))) === targets[i]).length;
  const clipCorrect = clipRows.filter((row, i) => argmax(evaluateDense(model.weights, model.bias, norm(row))) === i).length;
  log(`  train accuracy ${correct}/${rows.length} frames, ${clipCorrect}/${clipRows.length} whole clips`);

  const features: ManifestFeature[] = AUDIO_FEATURE_NAMES.map((name, j) => {
    const band = AUDIO_BANDS_HZ[j];
    return {
      name,
      unit: band ? 'log10(power)' : 'dBFS',
      description: band
        ? `log10 of the mean power in ${band[0]}-${band[1]} Hz (Hann, ${AUDIO_FRAME_SIZE}-sample frames at ${AUDIO_SAMPLE_RATE} Hz; models/features/audio-bands.ts)`
        : 'RMS level of the analysed samples in dB relative to full scale (amplitude 1)',
      mean: mean[j] ?? 0,
      std: std[j] ?? 1,
    };
  });
  return writeModel(outDir, log, {
    name: 'hive-sound',
    description: 'Colony sound state (normal / pre-swarm / swarm) from band energies of 2205 Hz in-hive audio. Pipeline model.',
    features,
    labels,
    weights: model.weights,
    bias: model.bias,
    training: {
      method: `softmax regression, full-batch gradient descent (learning rate ${TRAIN_OPTIONS.learningRate}, ${TRAIN_OPTIONS.epochs} epochs, L2 ${TRAIN_OPTIONS.l2}, mulberry32 seed 0x${TRAIN_SEED.toString(16)})`,
      data:
        `devices/sim/data/osbh-audio/{Active,Pre-Swarm,Swarm}.dat labelled normal/pre-swarm/swarm; ${AUDIO_FRAME_SIZE}-sample frames, hop ${TRAIN_HOP}. ` +
        `Source: ${OSBH_SOURCE}.`,
      notes:
        'The training data are three recordings of 2 s, one per label, each from a single hive and microphone. ' +
        'This is a pipeline model that exercises feature extraction, inference and plumbing; it learns the recordings, ' +
        'not the colony state, and its metrics are measured on its own training frames. It is not an accuracy claim.',
      metrics: {
        train_accuracy: roundSig(correct / rows.length),
        train_frames: rows.length,
        train_clip_accuracy: roundSig(clipCorrect / clipRows.length),
        final_cross_entropy: roundSig(model.loss),
      },
    },
    check: clipRows.map((row) => ({ features: toRecord(AUDIO_FEATURE_NAMES, row), expected: evaluateDense(model.weights, model.bias, norm(row)) })),
  });
}

/**
 * Hand-set logistic model: z = sum_i w_i * (x_i - mean_i) / std_i + bias.
 * The "mean" and "std" here are reference points, not data statistics: e.g.
 * frac_in_brood_band is centred on 0.5 and scaled by 0.25, so a window fully
 * in the brood band adds +2 * 2 = +4 to z and one never in it adds -4.
 */
const THERMAL_MODEL: Record<string, { unit: string; description: string; mean: number; std: number; weight: number }> = {
  temp_mean: { unit: '°C', description: 'mean temperature over the window', mean: 34.5, std: 2, weight: 0 },
  temp_std: { unit: '°C', description: 'population standard deviation of temperature over the window', mean: 1, std: 0.5, weight: -1 },
  temp_min: { unit: '°C', description: 'lowest temperature in the window', mean: BROOD_BAND_C.min, std: 2, weight: 0.5 },
  temp_max: { unit: '°C', description: 'highest temperature in the window', mean: BROOD_BAND_C.max, std: 2, weight: 0 },
  frac_in_brood_band: {
    unit: 'fraction',
    description: `share of readings within ${BROOD_BAND_C.min}..${BROOD_BAND_C.max} °C (the brood-nest band)`,
    mean: 0.5,
    std: 0.25,
    weight: 2,
  },
  humidity_mean: { unit: '%RH', description: 'mean relative humidity over the window', mean: 60, std: 15, weight: 0 },
};
const THERMAL_BIAS = 0;

async function buildHiveThermal(outDir: string, log: (line: string) => void): Promise<BuiltModel> {
  log('hive-thermal: hand-set logistic weights');
  const specs = THERMAL_FEATURE_NAMES.map((name) => {
    const spec = THERMAL_MODEL[name];
    if (!spec) throw new Error(`no hand-set weight for thermal feature ${name}`);
    return { name, ...spec };
  });
  const weights = specs.map((s) => [s.weight]);
  const held = { temp_mean: 34.5, temp_std: 0.2, temp_min: 34.2, temp_max: 34.8, frac_in_brood_band: 1, humidity_mean: 60 };
  const cold = { temp_mean: 23, temp_std: 3.5, temp_min: 18, temp_max: 28, frac_in_brood_band: 0, humidity_mean: 70 };
  const normOf = (x: Record<string, number>) => specs.map((s) => ((x[s.name] ?? 0) - s.mean) / s.std);
  return writeModel(outDir, log, {
    name: 'hive-thermal',
    description: 'Is the colony holding brood-nest temperature? Logistic score on a window (e.g. 24 h) of in-hive temperature and humidity.',
    features: specs.map(({ name, unit, description, mean, std }) => ({ name, unit, description, mean, std })),
    labels: ['brood_nest_held'],
    weights,
    bias: [THERMAL_BIAS],
    training: {
      method: 'hand-set',
      data: `none; weights set by hand from the known brood-nest band (${BROOD_BAND_C.min}-${BROOD_BAND_C.max} °C, about 34.5 °C, held within about 1 °C)`,
      notes:
        'Logistic model sigmoid(sum w_i * (x_i - mean_i) / std_i + b) with b = 0 and weights ' +
        specs.map((s) => `${s.name} ${s.weight}`).join(', ') +
        '. The manifest mean/std are reference points chosen by hand, not data statistics. It is driven mainly by ' +
        'frac_in_brood_band (more time in the band -> held) and temp_std (large swings -> not held), with cold dips ' +
        '(temp_min) as a smaller term. A model trained on the UrBAN beehive data replaces it later.',
    },
    check: [held, cold].map((x) => ({ features: x, expected: evaluateDense(weights, [THERMAL_BIAS], normOf(x)) })),
  });
}

interface ModelToWrite {
  name: string;
  description: string;
  features: ManifestFeature[];
  labels: string[];
  weights: number[][];
  bias: number[];
  training: ModelManifest['training'];
  /** Feature sets whose ONNX output must match the TypeScript evaluation. */
  check: { features: Record<string, number>; expected: number[] }[];
}

async function writeModel(outDir: string, log: (line: string) => void, m: ModelToWrite): Promise<BuiltModel> {
  const dir = path.join(outDir, m.name);
  const bytes = buildDenseClassifierOnnx({
    weights: m.weights,
    bias: m.bias,
    modelName: m.name,
    modelVersion: MODEL_VERSION,
    docString: m.description,
  });
  const sha256 = sha256Hex(bytes);
  // Validate before writing, so a schema change breaks the build rather than a node.
  const manifest = parseManifest(
    {
      name: m.name,
      version: MODEL_VERSION,
      description: m.description,
      file: 'model.onnx',
      sha256,
      inputs: [{ name: 'features', features: m.features }],
      outputs: [{ name: 'probabilities', labels: m.labels }],
      training: m.training,
      license: 'MIT',
      authors: AUTHORS,
    } satisfies ModelManifest,
    `${m.name} manifest`,
  );
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.onnx'), bytes);
  await writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`  wrote ${path.join(dir, 'model.onnx')} (${bytes.length} bytes, sha256 ${sha256})`);

  const model = await loadVerifiedModel({ dir, backend: new OnnxRuntimeNodeBackend() });
  try {
    for (const { features, expected } of m.check) {
      const { probabilities } = await model.predict(features);
      const worst = Math.max(...m.labels.map((label, i) => Math.abs((probabilities[label] ?? Number.NaN) - (expected[i] ?? 0))));
      if (!(worst <= 1e-4)) throw new Error(`${m.name}: onnxruntime output differs from the TypeScript evaluation by ${worst}`);
    }
  } finally {
    await model.close();
  }
  log(`  verified ${m.name} through onnxruntime-node (${m.check.length} checks)`);
  return { name: m.name, dir, sha256 };
}

function toRecord(names: readonly string[], values: readonly number[]): Record<string, number> {
  return Object.fromEntries(names.map((name, i) => [name, values[i] ?? Number.NaN]));
}

const invokedAs = process.argv[1];
if (invokedAs && import.meta.url === pathToFileURL(path.resolve(invokedAs)).href) {
  const outDir = path.join(packageRoot(), 'models');
  buildModels(outDir).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
